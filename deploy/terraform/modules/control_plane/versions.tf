terraform {
  required_version = ">= 1.5.0"
  required_providers {
    # One region per module instance: the root passes a regional alias, e.g.
    # providers = { aws = aws.eu_west_1 }.
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 6.0"
    }
  }
}
