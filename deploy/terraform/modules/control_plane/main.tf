# Coordinators (leader + standbys, admin gRPC :50051, /metrics :9117) and aggregators
# (shared durable consumer, remote_write, /metrics :9116), configured by cloud-init.

data "aws_ami" "debian" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"]

  filter {
    name   = "name"
    values = ["debian-13-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ami_id       = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id
  coordinators = [for i in range(var.coordinator_count) : format("%s-coordinator-%d", var.name_prefix, i + 1)]
  aggregators  = [for i in range(var.aggregator_count) : format("%s-aggregator-%d", var.name_prefix, i + 1)]
}

resource "aws_security_group" "coordinator" {
  name_prefix = "${var.name_prefix}-coordinator-"
  description = "probemesh coordinators: admin gRPC from operators, /metrics from monitoring"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-coordinator" })
}

resource "aws_vpc_security_group_ingress_rule" "admin_grpc" {
  for_each          = toset(var.operator_cidrs)
  security_group_id = aws_security_group.coordinator.id
  description       = "probemesh admin gRPC from operators"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 50051
  to_port           = 50051
}

resource "aws_vpc_security_group_ingress_rule" "coordinator_metrics" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.coordinator.id
  description       = "coordinator /metrics from monitoring"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9117
  to_port           = 9117
}

resource "aws_vpc_security_group_egress_rule" "coordinator_all" {
  security_group_id = aws_security_group.coordinator.id
  description       = "NATS, package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_security_group" "aggregator" {
  name_prefix = "${var.name_prefix}-aggregator-"
  description = "probemesh aggregators: /metrics from monitoring"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-aggregator" })
}

resource "aws_vpc_security_group_ingress_rule" "aggregator_metrics" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.aggregator.id
  description       = "aggregator /metrics from monitoring"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9116
  to_port           = 9116
}

resource "aws_vpc_security_group_egress_rule" "aggregator_all" {
  security_group_id = aws_security_group.aggregator.id
  description       = "NATS, remote_write, package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

module "coordinator_init" {
  source   = "../cloud_init"
  for_each = toset(local.coordinators)

  service         = "coordinator"
  node_id         = each.key
  nats_servers    = var.nats_servers
  nats_password   = var.nats_password
  stream_replicas = var.stream_replicas
  tls             = { ca_cert_pem = var.ca_cert_pem }
  install         = var.install
  log_level       = var.log_level
}

module "aggregator_init" {
  source   = "../cloud_init"
  for_each = toset(local.aggregators)

  service           = "aggregator"
  node_id           = each.key
  nats_servers      = var.nats_servers
  nats_password     = var.nats_password
  stream_replicas   = var.stream_replicas
  remote_write_urls = var.remote_write_urls
  tls               = { ca_cert_pem = var.ca_cert_pem }
  install           = var.install
  log_level         = var.log_level
}

resource "aws_instance" "coordinator" {
  count = var.coordinator_count

  ami                         = local.ami_id
  instance_type               = var.coordinator_instance_type
  subnet_id                   = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids      = concat([aws_security_group.coordinator.id], var.extra_security_group_ids)
  key_name                    = var.key_name
  user_data                   = module.coordinator_init[local.coordinators[count.index]].user_data
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, { Name = local.coordinators[count.index], "probemesh:service" = "coordinator" })
}

resource "aws_instance" "aggregator" {
  count = var.aggregator_count

  ami                         = local.ami_id
  instance_type               = var.aggregator_instance_type
  subnet_id                   = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids      = concat([aws_security_group.aggregator.id], var.extra_security_group_ids)
  key_name                    = var.key_name
  user_data                   = module.aggregator_init[local.aggregators[count.index]].user_data
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, { Name = local.aggregators[count.index], "probemesh:service" = "aggregator" })
}
