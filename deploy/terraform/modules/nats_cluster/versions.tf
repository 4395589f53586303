terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 6.0"
    }
    # Node certificates, signed by the mesh CA passed in.
    tls = {
      source  = "hashicorp/tls"
      version = ">= 4.0"
    }
  }
}
