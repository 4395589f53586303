output "user_data" {
  description = "The cloud-config document (#cloud-config) for the host; pass it as the instance's user data."
  value       = local.user_data
  sensitive   = true
}

output "config_path" {
  description = "Where the service's configuration file is written on the host."
  value       = local.config_path
}

output "unit_name" {
  description = "The systemd unit the host runs."
  value       = local.unit_name
}
