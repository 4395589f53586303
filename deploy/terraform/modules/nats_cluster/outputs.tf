output "nats_urls" {
  description = "Client URLs of the NATS servers (TLS required; the mesh CA signs their certificates)."
  value       = [for eni in aws_network_interface.node : "nats://${eni.private_ip}:4222"]
}

output "cluster_routes" {
  description = "Route URLs of the cluster (mutual TLS)."
  value       = local.routes
}

output "client_security_group_id" {
  description = "Attach this security group to a same-VPC instance to let it reach NATS on :4222."
  value       = aws_security_group.client.id
}

output "security_group_id" {
  description = "Security group of the NATS servers."
  value       = aws_security_group.nats.id
}

output "instance_ids" {
  description = "EC2 instance ids of the NATS servers."
  value       = aws_instance.node[*].id
}
