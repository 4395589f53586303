output "prober_ids_by_zone" {
  description = "Prober ids per availability zone (the prober label of their results)."
  value       = { for zone in keys(var.zones) : zone => sort([for id, p in local.probers : id if p.zone == zone]) }
}

output "private_ips" {
  description = "Private IP of each prober, by prober id (Prometheus scrape targets :9115)."
  value       = { for id, inst in aws_instance.prober : id => inst.private_ip }
}

output "security_group_id" {
  description = "Security group of the probers."
  value       = aws_security_group.prober.id
}

output "region" {
  description = "Region of this fleet."
  value       = local.region
}
