variable "name_prefix" {
  type        = string
  description = "Prefix of NATS server names and AWS names."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "name_prefix must be 1-21 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the NATS cluster."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets (one per availability zone, ideally three) the nodes are spread over, round-robin."
  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must not be empty."
  }
}

variable "node_count" {
  type        = number
  description = "Number of NATS servers (JetStream needs an odd number for its RAFT quorum)."
  default     = 3
  validation {
    condition     = contains([3, 5], var.node_count)
    error_message = "node_count must be 3 or 5."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the NATS servers."
  default     = "t3.medium"
}

variable "ami_id" {
  type        = string
  description = "AMI of the NATS servers; empty = the newest official Debian 13 (amd64) image."
  default     = ""
}

variable "ca_cert_pem" {
  type        = string
  description = "PEM of the mesh CA that signs the node certificates."
}

variable "ca_private_key_pem" {
  type        = string
  description = "PEM private key of the mesh CA (signs the node certificates; stays in the Terraform state)."
  sensitive   = true
}

variable "nats_password" {
  type        = string
  description = "Password of the probemesh NATS user."
  sensitive   = true
  validation {
    condition     = length(var.nats_password) >= 16
    error_message = "nats_password must be at least 16 characters."
  }
}

variable "client_cidr_blocks" {
  type        = list(string)
  description = "CIDRs of mesh nodes outside this VPC (other regions' prober VPCs over peering or a transit gateway) allowed on :4222. Same-VPC nodes use client_security_group_id instead."
  default     = []
  validation {
    condition     = alltrue([for c in var.client_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "client_cidr_blocks must be CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "CIDRs allowed on the NATS monitoring port :8222 (Prometheus' NATS exporter)."
  default     = []
}

variable "data_volume_gb" {
  type        = number
  description = "Root volume size in GiB (holds the JetStream store)."
  default     = 50
  validation {
    condition     = var.data_volume_gb >= 20
    error_message = "data_volume_gb must be at least 20."
  }
}

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH; null = none."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
