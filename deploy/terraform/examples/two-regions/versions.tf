terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 6.0"
    }
    tls = {
      source  = "hashicorp/tls"
      version = ">= 4.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

# One provider configuration per region; modules get theirs through `providers`.
provider "aws" {
  alias  = "eu"
  region = var.eu.region
}

provider "aws" {
  alias  = "us"
  region = var.us.region
}
