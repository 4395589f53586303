# Renders the cloud-init user data of one probemesh host. No provider: any cloud that
# takes cloud-config user data can use it (AWS, GCP, Azure, OpenStack, Hetzner, ...).
#
# Every host gets: the probemesh system user, its packages, /etc/probemesh/<service>.yml
# (or nats-server.conf), the secrets as PROBEMESH_* overrides in /etc/probemesh/<service>.env,
# the mesh CA (and for NATS nodes their certificate and key) under /etc/probemesh/tls, the
# systemd unit from deploy/systemd, and `systemctl enable --now` of that unit.

locals {
  config_files = {
    prober      = "prober.yml"
    coordinator = "coordinator.yml"
    aggregator  = "aggregator.yml"
    nats        = "nats-server.conf"
  }
  packages = {
    prober      = ["nodejs", "npm", "fping", "bpftrace", "chrony"]
    coordinator = ["nodejs", "npm"]
    aggregator  = ["nodejs", "npm"]
    nats        = ["nats-server"]
  }
  unit_name   = "probemesh-${var.service}.service"
  config_path = "/etc/probemesh/${local.config_files[var.service]}"

  # The variables every template sees (flat: templates use ${name} and %{ for } only).
  template_vars = {
    service           = var.service
    node_id           = var.node_id
    region            = var.region
    zone              = var.zone
    capacity          = var.capacity
    nats_servers      = var.nats_servers
    nats_user         = var.nats_user
    stream_replicas   = var.stream_replicas
    remote_write_urls = var.remote_write_urls
    nats_cluster_name = var.nats_cluster_name
    nats_routes       = var.nats_routes
    log_level         = var.log_level
    tls_dir           = "/etc/probemesh/tls"
  }

  service_config = templatefile("${path.module}/templates/${local.config_files[var.service]}.tftpl", local.template_vars)
  # Node services take it as a PROBEMESH_* override; nats-server.conf references the same
  # environment variable ($PROBEMESH_NATS_PASSWORD), so no secret sits in a config file.
  env_file  = "PROBEMESH_NATS_PASSWORD=${var.nats_password}\n"
  unit_file = file("${path.module}/../../../systemd/${local.unit_name}")

  user_data = templatefile("${path.module}/templates/cloud-config.yaml.tftpl", merge(local.template_vars, {
    packages           = distinct(concat(local.packages[var.service], var.install.method == "git" && var.service != "nats" ? ["git"] : [], var.extra_packages))
    config_path        = local.config_path
    service_config_b64 = base64encode(local.service_config)
    env_path           = "/etc/probemesh/${var.service}.env"
    env_b64            = base64encode(local.env_file)
    unit_name          = local.unit_name
    unit_b64           = base64encode(local.unit_file)
    ca_b64             = base64encode(var.tls.ca_cert_pem)
    cert_b64           = base64encode(var.tls.cert_pem)
    key_b64            = base64encode(var.tls.key_pem)
    install_method     = var.install.method
    install_url        = var.install.url
    install_ref        = var.install.ref
  }))
}
