output "nats_urls" {
  description = "NATS client URLs."
  value       = module.nats.nats_urls
}

output "admin_endpoint" {
  description = "Admin gRPC endpoint for the CLI: probemesh probers --addr <this>."
  value       = module.control_plane.admin_endpoint
}

output "prober_ids_by_zone" {
  description = "Prober ids per availability zone, both regions."
  value       = merge(module.probers_eu.prober_ids_by_zone, module.probers_us.prober_ids_by_zone)
}

output "scrape_targets" {
  description = "Every /metrics endpoint for the central Prometheus, by job."
  value = {
    probemesh_prober      = [for ip in concat(values(module.probers_eu.private_ips), values(module.probers_us.private_ips)) : "${ip}:9115"]
    probemesh_coordinator = module.control_plane.metrics_targets.coordinator
    probemesh_aggregator  = module.control_plane.metrics_targets.aggregator
  }
}

output "ca_cert_pem" {
  description = "The mesh CA certificate (give it to clients of NATS)."
  value       = tls_self_signed_cert.ca.cert_pem
}
