variable "service" {
  type        = string
  description = "Which probemesh service this host runs: prober, coordinator, aggregator or nats."
  validation {
    condition     = contains(["prober", "coordinator", "aggregator", "nats"], var.service)
    error_message = "service must be one of prober, coordinator, aggregator, nats."
  }
}

variable "node_id" {
  type        = string
  description = "Id of the service instance (prober id, coordinator/aggregator id, NATS server name): letters, digits, '-' and '_' (a NATS subject token)."
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.node_id))
    error_message = "node_id may contain only letters, digits, '-' and '_'."
  }
}

variable "region" {
  type        = string
  description = "Region of the host (the prober's region key)."
  default     = "local"
}

variable "zone" {
  type        = string
  description = "Zone of the host (the prober's zone key and the zone label of its results)."
  default     = "default"
}

variable "capacity" {
  type        = number
  description = "Prober capacity (placement weight); ignored by other services."
  default     = 1
  validation {
    condition     = var.capacity >= 1 && floor(var.capacity) == var.capacity
    error_message = "capacity must be an integer >= 1."
  }
}

variable "nats_servers" {
  type        = list(string)
  description = "NATS client URLs the services connect to (nats://host:4222; the servers require TLS, the client upgrades)."
  default     = []
  validation {
    condition     = alltrue([for u in var.nats_servers : can(regex("^(nats|tls)://[^/]+:[0-9]+$", u))])
    error_message = "every NATS server must look like nats://host:port or tls://host:port."
  }
}

variable "nats_user" {
  type        = string
  description = "NATS user of the probemesh services."
  default     = "probemesh"
}

variable "nats_password" {
  type        = string
  description = "NATS password of the probemesh services; written to /etc/probemesh/<service>.env (PROBEMESH_NATS_PASSWORD), never into the YAML."
  sensitive   = true
  validation {
    condition     = length(var.nats_password) >= 16
    error_message = "nats_password must be at least 16 characters."
  }
}

variable "stream_replicas" {
  type        = number
  description = "JetStream replicas of the PM_RESULTS stream (3 on the 3-node cluster)."
  default     = 3
  validation {
    condition     = contains([1, 3, 5], var.stream_replicas)
    error_message = "stream_replicas must be 1, 3 or 5."
  }
}

variable "remote_write_urls" {
  type        = list(string)
  description = "remote_write endpoints of the aggregators (Prometheus: https://host/api/v1/write)."
  default     = []
  validation {
    condition     = alltrue([for u in var.remote_write_urls : can(regex("^https?://", u))])
    error_message = "remote_write URLs must start with http:// or https://."
  }
}

variable "nats_cluster_name" {
  type        = string
  description = "NATS cluster name (nats service only)."
  default     = "probemesh"
}

variable "nats_routes" {
  type        = list(string)
  description = "Cluster route URLs of all NATS nodes, this one included (nats service only), e.g. tls://10.0.1.10:6222."
  default     = []
}

variable "tls" {
  type = object({
    ca_cert_pem = string
    cert_pem    = optional(string, "")
    key_pem     = optional(string, "")
  })
  description = "PEM of the mesh CA (every host trusts it), and of this host's certificate and key (NATS nodes; empty elsewhere)."
  sensitive   = true
  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.tls.ca_cert_pem))
    error_message = "tls.ca_cert_pem must be a PEM certificate."
  }
}

variable "install" {
  type = object({
    method = string
    url    = string
    ref    = optional(string, "main")
  })
  description = "How probemesh is installed: method \"npm\" (npm install -g of a tarball URL, e.g. a release's probemesh-cli.tgz built with bundled dependencies) or \"git\" (clone url at ref, npm ci, npm run build). Both put the CLI at /usr/local/bin/probemesh, where the systemd units expect it."
  default = {
    method = "git"
    url    = "https://github.com/probemesh/probemesh.git"
    ref    = "main"
  }
  validation {
    condition     = contains(["npm", "git"], var.install.method)
    error_message = "install.method must be \"npm\" or \"git\"."
  }
}

variable "log_level" {
  type        = string
  description = "Log level of the service."
  default     = "info"
  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "fatal"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error, fatal."
  }
}

variable "extra_packages" {
  type        = list(string)
  description = "Additional Debian packages to install."
  default     = []
}
