/**
 * The metric names probemesh writes (the agreed list in the round-2 brief, plus each
 * service's own /metrics), and a PromQL metric-name extractor, so rules and dashboards
 * can be checked to query only what exists.
 */

/** Written to Prometheus per probe result by the aggregator (blackbox names + ours). */
export const RESULT_METRICS = [
  'probe_success', 'probe_duration_seconds', 'probe_http_duration_seconds', 'probe_http_status_code', 'probe_http_version', 'probe_failure_info',
  'probe_ssl_earliest_cert_expiry', 'probe_ssl_last_chain_expiry_timestamp_seconds', 'probe_tls_version_info', 'probe_ssl_last_chain_info',
  'probe_tls_cipher_info', 'probe_http_redirects', 'probe_dns_lookup_time_seconds', 'probe_dns_answer_rrs', 'probe_dns_authority_rrs',
  'probe_dns_additional_rrs', 'probe_dns_query_succeeded', 'probe_icmp_duration_seconds', 'probe_icmp_reply_hop_limit',
  'probemesh_icmp_packet_loss_ratio', 'probemesh_icmp_rtt_seconds', 'probe_grpc_healthcheck_response', 'probe_grpc_status_code',
  'probe_tcp_kernel_connect_seconds', 'probe_tcp_kernel_first_byte_seconds', 'probe_tcp_srtt_seconds', 'probe_tcp_rttvar_seconds',
  'probe_tcp_retransmits', 'probe_tcp_syn_retransmits', 'probe_tcp_resets', 'probe_clock_error_bound_seconds',
  'probemesh_probe_duration_seconds_bucket', 'probemesh_probe_duration_seconds_sum', 'probemesh_probe_duration_seconds_count',
  'probemesh_probe_jitter_seconds',
] as const;

/** The services' own /metrics (scraped). */
export const SERVICE_METRICS = [
  // prober
  'probemesh_prober_probes_total', 'probemesh_prober_probes_in_flight', 'probemesh_prober_targets', 'probemesh_prober_assignment_epoch',
  'probemesh_prober_results_published_total', 'probemesh_prober_results_buffered', 'probemesh_prober_results_dropped_total',
  'probemesh_prober_publish_errors_total', 'probemesh_prober_scheduler_late_total', 'probemesh_prober_scheduler_missed_total',
  'probemesh_prober_scheduler_lag_seconds_bucket', 'probemesh_prober_scheduler_lag_seconds_sum', 'probemesh_prober_scheduler_lag_seconds_count',
  'probemesh_ebpf_up', 'probemesh_ebpf_info', 'probemesh_clock_offset_seconds', 'probemesh_clock_error_bound_seconds', 'probemesh_clock_synced', 'probemesh_clock_info',
  // coordinator
  'probemesh_coordinator_probers', 'probemesh_coordinator_targets', 'probemesh_coordinator_targets_per_prober', 'probemesh_coordinator_assignment_epoch',
  'probemesh_coordinator_rebalances_total', 'probemesh_coordinator_moved_targets_total', 'probemesh_coordinator_elections_total', 'probemesh_coordinator_term',
  'probemesh_coordinator_is_leader', 'probemesh_coordinator_targets_uncovered',
  'probemesh_coordinator_coverage_gap_seconds_bucket', 'probemesh_coordinator_coverage_gap_seconds_sum', 'probemesh_coordinator_coverage_gap_seconds_count',
  // aggregator
  'probemesh_aggregator_remote_storage_lag_seconds', 'probemesh_aggregator_results_received_total', 'probemesh_aggregator_samples_sent_total',
  'probemesh_aggregator_pending_messages', 'probemesh_aggregator_prober_clock_skew_seconds', 'probemesh_aggregator_messages_dropped_total',
  'probemesh_aggregator_remote_write_requests_total',
  // canary
  'probemesh_canary_verdict', 'probemesh_canary_score', 'probemesh_canary_metric_effect_ratio',
  // Prometheus' own per-target series
  'up',
] as const;

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group', 'inf', 'nan',
]);

/**
 * Metric names a PromQL expression selects: identifiers that are not functions, keywords,
 * label names (inside `{…}` or `by (…)`), strings or durations; plus `{__name__="x"}`.
 */
export function extractMetricNames(expr: string): Set<string> {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(m[1]!);
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^{}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  for (const m of s.matchAll(/(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const id = m[1]!;
    if (m[2]) continue; // function call or aggregation
    if (KEYWORDS.has(id.toLowerCase())) continue;
    if (/^\d/.test(id)) continue;
    names.add(id);
  }
  return names;
}
