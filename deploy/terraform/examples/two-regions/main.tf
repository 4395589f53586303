# Two regions: the NATS cluster, coordinators and aggregators live in the home region
# (eu); probers run in every availability zone of both regions.

# The mesh CA. Its key stays in the Terraform state: keep the state encrypted, or pass
# an externally managed CA into the modules instead.
resource "tls_private_key" "ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "ca" {
  private_key_pem       = tls_private_key.ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 24 * 365 * 5
  allowed_uses          = ["cert_signing", "crl_signing", "digital_signature"]

  subject {
    common_name  = "${var.name_prefix} probemesh mesh CA"
    organization = "probemesh"
  }
}

resource "random_password" "nats" {
  length  = 32
  special = false
}

module "nats" {
  source    = "../../modules/nats_cluster"
  providers = { aws = aws.eu }

  name_prefix        = var.name_prefix
  vpc_id             = var.eu.vpc_id
  subnet_ids         = values(var.eu.subnets)
  ca_cert_pem        = tls_self_signed_cert.ca.cert_pem
  ca_private_key_pem = tls_private_key.ca.private_key_pem
  nats_password      = random_password.nats.result
  client_cidr_blocks = [var.us.vpc_cidr]
  monitoring_cidrs   = var.monitoring_cidrs
}

module "control_plane" {
  source    = "../../modules/control_plane"
  providers = { aws = aws.eu }

  name_prefix              = var.name_prefix
  vpc_id                   = var.eu.vpc_id
  subnet_ids               = values(var.eu.subnets)
  operator_cidrs           = var.operator_cidrs
  monitoring_cidrs         = var.monitoring_cidrs
  extra_security_group_ids = [module.nats.client_security_group_id]
  nats_servers             = module.nats.nats_urls
  nats_password            = random_password.nats.result
  remote_write_urls        = var.remote_write_urls
  ca_cert_pem              = tls_self_signed_cert.ca.cert_pem
  install                  = var.install
}

module "probers_eu" {
  source    = "../../modules/prober_fleet"
  providers = { aws = aws.eu }

  name_prefix              = var.name_prefix
  vpc_id                   = var.eu.vpc_id
  zones                    = { for zone, subnet in var.eu.subnets : zone => { subnet_id = subnet, count = var.probers_per_zone } }
  monitoring_cidrs         = var.monitoring_cidrs
  extra_security_group_ids = [module.nats.client_security_group_id]
  nats_servers             = module.nats.nats_urls
  nats_password            = random_password.nats.result
  ca_cert_pem              = tls_self_signed_cert.ca.cert_pem
  install                  = var.install
}

module "probers_us" {
  source    = "../../modules/prober_fleet"
  providers = { aws = aws.us }

  name_prefix      = var.name_prefix
  vpc_id           = var.us.vpc_id
  zones            = { for zone, subnet in var.us.subnets : zone => { subnet_id = subnet, count = var.probers_per_zone, instance_type = "t3.micro" } }
  monitoring_cidrs = var.monitoring_cidrs
  nats_servers     = module.nats.nats_urls
  nats_password    = random_password.nats.result
  ca_cert_pem      = tls_self_signed_cert.ca.cert_pem
  install          = var.install
}
