variable "name_prefix" {
  type        = string
  description = "Prefix of prober ids and AWS names, e.g. \"pm\" gives prober ids pm-eu-west-1a-01."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "name_prefix must be 1-21 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the probers in this region."
}

variable "zones" {
  type = map(object({
    subnet_id     = string
    count         = number
    instance_type = optional(string, "t3.small")
    capacity      = optional(number, 1)
  }))
  description = "Probers per availability zone (key = zone name, e.g. eu-west-1a): subnet, number of probers, instance type and placement capacity of each."
  validation {
    condition     = length(var.zones) > 0
    error_message = "zones must name at least one zone."
  }
  validation {
    condition     = alltrue([for z in values(var.zones) : z.count >= 0 && z.count <= 50 && floor(z.count) == z.count])
    error_message = "each zone's count must be an integer from 0 to 50."
  }
  validation {
    condition     = alltrue([for z in values(var.zones) : z.capacity >= 1 && floor(z.capacity) == z.capacity])
    error_message = "each zone's capacity must be an integer >= 1."
  }
  validation {
    condition     = alltrue([for k in keys(var.zones) : can(regex("^[a-z0-9-]+$", k))])
    error_message = "zone names may contain only lower-case letters, digits and '-' (they become part of prober ids)."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of the probers; empty = the newest official Debian 13 (amd64) image."
  default     = ""
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "CIDRs of the Prometheus servers that scrape the probers' /metrics and /probe on :9115 (the only inbound traffic allowed)."
  validation {
    condition     = length(var.monitoring_cidrs) > 0 && alltrue([for c in var.monitoring_cidrs : can(cidrhost(c, 0))])
    error_message = "monitoring_cidrs must be a non-empty list of CIDR blocks."
  }
  validation {
    condition     = !contains(var.monitoring_cidrs, "0.0.0.0/0")
    error_message = "monitoring_cidrs must not be 0.0.0.0/0: :9115 must not be open to the internet."
  }
}

variable "extra_security_group_ids" {
  type        = list(string)
  description = "Extra security groups of every prober, e.g. the NATS cluster's client group when the probers share its VPC."
  default     = []
}

variable "nats_servers" {
  type        = list(string)
  description = "NATS client URLs (nats_cluster module output nats_urls)."
  validation {
    condition     = length(var.nats_servers) > 0
    error_message = "nats_servers must not be empty."
  }
}

variable "nats_password" {
  type        = string
  description = "NATS password of the probemesh services."
  sensitive   = true
}

variable "stream_replicas" {
  type        = number
  description = "JetStream replicas of the PM_RESULTS stream."
  default     = 3
}

variable "ca_cert_pem" {
  type        = string
  description = "PEM of the mesh CA, trusted for the NATS servers' TLS certificates."
}

variable "install" {
  type = object({
    method = string
    url    = string
    ref    = optional(string, "main")
  })
  description = "How cloud-init installs probemesh (see the cloud_init module's install variable)."
}

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH; null = none (use SSM Session Manager)."
  default     = null
}

variable "root_volume_gb" {
  type        = number
  description = "Root volume size of each prober in GiB."
  default     = 16
  validation {
    condition     = var.root_volume_gb >= 8
    error_message = "root_volume_gb must be at least 8."
  }
}

variable "log_level" {
  type        = string
  description = "Log level of the probers."
  default     = "info"
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
