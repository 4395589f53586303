output "admin_endpoint" {
  description = "Admin gRPC endpoint of the first coordinator (probemesh --addr)."
  value       = "${aws_instance.coordinator[0].private_ip}:50051"
}

output "admin_endpoints" {
  description = "Admin gRPC endpoints of all coordinators."
  value       = [for c in aws_instance.coordinator : "${c.private_ip}:50051"]
}

output "coordinator_ids" {
  description = "Coordinator ids."
  value       = local.coordinators
}

output "aggregator_ids" {
  description = "Aggregator ids."
  value       = local.aggregators
}

output "metrics_targets" {
  description = "host:port of every control plane /metrics endpoint, by service (Prometheus scrape targets)."
  value = {
    coordinator = [for c in aws_instance.coordinator : "${c.private_ip}:9117"]
    aggregator  = [for a in aws_instance.aggregator : "${a.private_ip}:9116"]
  }
}
