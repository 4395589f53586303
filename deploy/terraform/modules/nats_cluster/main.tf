# A NATS cluster with JetStream: node_count servers spread over the subnets, clients on
# :4222 with TLS + password, routes on :6222 with mutual TLS. Each node's private IP is
# fixed by a pre-created network interface, so its certificate (IP SAN) and every node's
# route list can be written into cloud-init before the instance exists.

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
  ami_id = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id
  names  = [for i in range(var.node_count) : format("%s-nats-%d", var.name_prefix, i + 1)]
  routes = [for eni in aws_network_interface.node : "tls://${eni.private_ip}:6222"]
}

# Members of this group may connect to NATS on :4222 (attach it to coordinators,
# aggregators and same-VPC probers).
resource "aws_security_group" "client" {
  name_prefix = "${var.name_prefix}-nats-client-"
  description = "probemesh NATS clients (membership grants :4222 on the NATS servers)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-nats-client" })
}

resource "aws_security_group" "nats" {
  name_prefix = "${var.name_prefix}-nats-"
  description = "probemesh NATS servers: 4222 from mesh nodes, 6222 between servers"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-nats" })
}

resource "aws_vpc_security_group_ingress_rule" "client_from_mesh" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS clients from mesh nodes"
  referenced_security_group_id = aws_security_group.client.id
  ip_protocol                  = "tcp"
  from_port                    = 4222
  to_port                      = 4222
}

resource "aws_vpc_security_group_ingress_rule" "client_from_cidr" {
  for_each          = toset(var.client_cidr_blocks)
  security_group_id = aws_security_group.nats.id
  description       = "NATS clients from remote mesh VPCs"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 4222
  to_port           = 4222
}

resource "aws_vpc_security_group_ingress_rule" "cluster_routes" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS cluster routes between the servers"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = 6222
  to_port                      = 6222
}

resource "aws_vpc_security_group_ingress_rule" "monitoring" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.nats.id
  description       = "NATS monitoring endpoint"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 8222
  to_port           = 8222
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.nats.id
  description       = "routes to peers, package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_network_interface" "node" {
  count           = var.node_count
  subnet_id       = var.subnet_ids[count.index % length(var.subnet_ids)]
  security_groups = [aws_security_group.nats.id]
  tags            = merge(var.tags, { Name = local.names[count.index] })
}

resource "tls_private_key" "node" {
  count       = var.node_count
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "node" {
  count           = var.node_count
  private_key_pem = tls_private_key.node[count.index].private_key_pem
  ip_addresses    = [aws_network_interface.node[count.index].private_ip]
  dns_names       = [local.names[count.index]]

  subject {
    common_name  = local.names[count.index]
    organization = "probemesh"
  }
}

resource "tls_locally_signed_cert" "node" {
  count                 = var.node_count
  cert_request_pem      = tls_cert_request.node[count.index].cert_request_pem
  ca_private_key_pem    = var.ca_private_key_pem
  ca_cert_pem           = var.ca_cert_pem
  validity_period_hours = 24 * 365
  early_renewal_hours   = 24 * 30
  # Server auth for clients and routes; client auth because routes verify both ends.
  allowed_uses = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
}

module "cloud_init" {
  source = "../cloud_init"
  count  = var.node_count

  service           = "nats"
  node_id           = local.names[count.index]
  nats_password     = var.nats_password
  nats_cluster_name = var.name_prefix
  nats_routes       = local.routes
  tls = {
    ca_cert_pem = var.ca_cert_pem
    cert_pem    = tls_locally_signed_cert.node[count.index].cert_pem
    key_pem     = tls_private_key.node[count.index].private_key_pem
  }
}

resource "aws_instance" "node" {
  count = var.node_count

  ami                         = local.ami_id
  instance_type               = var.instance_type
  key_name                    = var.key_name
  user_data                   = module.cloud_init[count.index].user_data
  user_data_replace_on_change = true

  network_interface {
    network_interface_id = aws_network_interface.node[count.index].id
    device_index         = 0
  }

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_size = var.data_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, {
    Name                = local.names[count.index]
    "probemesh:service" = "nats"
  })
}
