# Probers of one region: N per availability zone, each an EC2 instance configured by
# cloud-init (modules/cloud_init) and running probemesh-prober.service.

data "aws_region" "current" {}

data "aws_ami" "debian" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account

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
  region = data.aws_region.current.name
  ami_id = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id

  # id => prober, e.g. "pm-eu-west-1a-01" => { zone = "eu-west-1a", ... }. Ids stay stable
  # when another zone's count changes, so only the changed zone's instances move.
  probers = merge([
    for zone, z in var.zones : {
      for i in range(z.count) : format("%s-%s-%02d", var.name_prefix, zone, i + 1) => {
        zone          = zone
        subnet_id     = z.subnet_id
        instance_type = z.instance_type
        capacity      = z.capacity
      }
    }
  ]...)
}

resource "aws_security_group" "prober" {
  name_prefix = "${var.name_prefix}-prober-"
  description = "probemesh probers: :9115 from monitoring only; all outbound (probes)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-prober" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "prober_http" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.prober.id
  description       = "probemesh prober /metrics and /probe from monitoring"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9115
  to_port           = 9115
}

resource "aws_vpc_security_group_egress_rule" "prober_all" {
  security_group_id = aws_security_group.prober.id
  description       = "probes go anywhere; NATS, package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

module "cloud_init" {
  source   = "../cloud_init"
  for_each = local.probers

  service         = "prober"
  node_id         = each.key
  region          = local.region
  zone            = each.value.zone
  capacity        = each.value.capacity
  nats_servers    = var.nats_servers
  nats_password   = var.nats_password
  stream_replicas = var.stream_replicas
  tls             = { ca_cert_pem = var.ca_cert_pem }
  install         = var.install
  log_level       = var.log_level
}

resource "aws_instance" "prober" {
  for_each = local.probers

  ami                         = local.ami_id
  instance_type               = each.value.instance_type
  subnet_id                   = each.value.subnet_id
  vpc_security_group_ids      = concat([aws_security_group.prober.id], var.extra_security_group_ids)
  key_name                    = var.key_name
  user_data                   = module.cloud_init[each.key].user_data
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, {
    Name                = each.key
    "probemesh:service" = "prober"
    "probemesh:zone"    = each.value.zone
  })
}
