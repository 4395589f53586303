import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractMetricNames } from './metric-names';

test('extractMetricNames finds selected metrics only', () => {
  const cases: [string, string[]][] = [
    ['probe_success', ['probe_success']],
    ['histogram_quantile(0.95, sum by (instance, le) (rate(probemesh_probe_duration_seconds_bucket{job="x"}[5m])))', ['probemesh_probe_duration_seconds_bucket']],
    ['count by (instance) (probe_success == 0) >= 2 or a:b:c == on (instance, module) d_e', ['a:b:c', 'd_e', 'probe_success']],
    ['avg by (phase) (probe_http_duration_seconds{instance=~"$instance", phase="connect"}) - on (prober) group_left (zone) probe_tcp_kernel_connect_seconds offset 5m', ['probe_http_duration_seconds', 'probe_tcp_kernel_connect_seconds']],
    ['{__name__="up", job="p"}', ['up']],
    ['min by (instance) (probe_ssl_earliest_cert_expiry) - time() < 86400 * 14', ['probe_ssl_earliest_cert_expiry']],
    ['count(x >= 2) or vector(0)', ['x']],
    ['sum(rate(foo_total[$__rate_interval])) / ignoring (code) bar', ['bar', 'foo_total']],
  ];
  for (const [expr, want] of cases) assert.deepEqual([...extractMetricNames(expr)].sort(), want, expr);
});
