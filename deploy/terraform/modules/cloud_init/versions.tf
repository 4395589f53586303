terraform {
  # Provider-independent: only templatefile(), file() and base64encode().
  required_version = ">= 1.5.0"
}
