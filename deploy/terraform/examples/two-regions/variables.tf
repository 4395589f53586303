variable "name_prefix" {
  type        = string
  description = "Prefix of every id and AWS name."
  default     = "pm"
}

variable "eu" {
  type = object({
    region   = string
    vpc_id   = string
    vpc_cidr = string
    # zone => subnet id
    subnets = map(string)
  })
  description = "The home region (NATS cluster, control plane, probers): its VPC and one subnet per availability zone."
  validation {
    condition     = length(var.eu.subnets) >= 3
    error_message = "the home region needs three subnets (one per zone) for the 3-node NATS cluster."
  }
}

variable "us" {
  type = object({
    region   = string
    vpc_id   = string
    vpc_cidr = string
    subnets  = map(string)
  })
  description = "The second region (probers only); its VPC must reach the home VPC (peering or transit gateway)."
  validation {
    condition     = length(var.us.subnets) >= 1
    error_message = "the second region needs at least one subnet."
  }
}

variable "probers_per_zone" {
  type        = number
  description = "Probers in every availability zone of both regions."
  default     = 2
  validation {
    condition     = var.probers_per_zone >= 1
    error_message = "probers_per_zone must be at least 1."
  }
}

variable "operator_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to use the admin gRPC API (:50051)."
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "CIDRs of the central Prometheus (scrapes :9115/:9116/:9117/:8222)."
}

variable "remote_write_urls" {
  type        = list(string)
  description = "remote_write endpoints of the central Prometheus (or Mimir / Thanos receive / VictoriaMetrics)."
}

variable "install" {
  type = object({
    method = string
    url    = string
    ref    = optional(string, "main")
  })
  description = "How probemesh is installed on every host."
  default = {
    method = "git"
    url    = "https://github.com/probemesh/probemesh.git"
    ref    = "main"
  }
}
