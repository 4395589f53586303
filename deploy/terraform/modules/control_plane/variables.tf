variable "name_prefix" {
  type        = string
  description = "Prefix of coordinator/aggregator ids and AWS names."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "name_prefix must be 1-21 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the control plane (normally the NATS cluster's)."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets the coordinators and aggregators are spread over, round-robin."
  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must not be empty."
  }
}

variable "coordinator_count" {
  type        = number
  description = "Coordinators: one leader plus standbys (leader lease in NATS KV)."
  default     = 2
  validation {
    condition     = var.coordinator_count >= 1 && var.coordinator_count <= 5
    error_message = "coordinator_count must be between 1 and 5."
  }
}

variable "aggregator_count" {
  type        = number
  description = "Aggregators sharing the durable JetStream consumer."
  default     = 2
  validation {
    condition     = var.aggregator_count >= 1 && var.aggregator_count <= 20
    error_message = "aggregator_count must be between 1 and 20."
  }
}

variable "coordinator_instance_type" {
  type        = string
  description = "EC2 instance type of the coordinators."
  default     = "t3.small"
}

variable "aggregator_instance_type" {
  type        = string
  description = "EC2 instance type of the aggregators."
  default     = "t3.medium"
}

variable "ami_id" {
  type        = string
  description = "AMI of the control plane hosts; empty = the newest official Debian 13 (amd64) image."
  default     = ""
}

variable "operator_cidrs" {
  type        = list(string)
  description = "CIDRs of operators and deploy pipelines allowed on the coordinators' admin gRPC port :50051."
  validation {
    condition     = length(var.operator_cidrs) > 0 && alltrue([for c in var.operator_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "operator_cidrs must be a non-empty list of CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "CIDRs of the Prometheus servers scraping /metrics (coordinator :9117, aggregator :9116)."
  validation {
    condition     = alltrue([for c in var.monitoring_cidrs : can(cidrhost(c, 0))])
    error_message = "monitoring_cidrs must be CIDR blocks."
  }
}

variable "extra_security_group_ids" {
  type        = list(string)
  description = "Extra security groups of every control plane host (the NATS cluster's client group)."
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

variable "remote_write_urls" {
  type        = list(string)
  description = "remote_write endpoints the aggregators write every result to."
  validation {
    condition     = length(var.remote_write_urls) > 0
    error_message = "remote_write_urls must name at least one endpoint."
  }
}

variable "ca_cert_pem" {
  type        = string
  description = "PEM of the mesh CA."
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
  description = "EC2 key pair for SSH; null = none."
  default     = null
}

variable "log_level" {
  type        = string
  description = "Log level of the services."
  default     = "info"
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
