import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, HttpEndpoint, loadConfig, serveHttp, silentLogger } from '@probemesh/common';
import { Registry } from 'prom-client';
import { blackboxFileSchema, builtinModules, ProbeModules } from './modules';
import { probeRoute, probeTimeoutSeconds } from './probe-handler';
import { HttpZoo, startHttpZoo } from './testing/http-zoo';

/** What blackbox_exporter 0.23 answers for a plain HTTP 200 (seen with the Debian binary). */
const BLACKBOX_HTTP_NAMES = [
  'probe_dns_lookup_time_seconds',
  'probe_duration_seconds',
  'probe_failed_due_to_regex',
  'probe_http_content_length',
  'probe_http_duration_seconds',
  'probe_http_redirects',
  'probe_http_ssl',
  'probe_http_status_code',
  'probe_http_uncompressed_body_length',
  'probe_http_version',
  'probe_ip_addr_hash',
  'probe_ip_protocol',
  'probe_success',
];

function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/probe', () => {
  let zoo: HttpZoo;
  let ep: HttpEndpoint;
  const get = async (q: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string }> => {
    const r = await fetch(`${ep.url}/probe${q}`, { headers });
    return { status: r.status, text: await r.text(), type: r.headers.get('content-type') ?? '' };
  };

  before(async () => {
    zoo = await startHttpZoo();
    const extra = loadConfig(blackboxFileSchema, { env: {}, text: `modules:\n  tls_ca:\n    prober: http\n    timeout: 2s\n    http:\n      tls_config:\n        ca_file: ${zoo.certs.caFile}\n` }).modules;
    const modules = new ProbeModules({ ...builtinModules(), ...extra });
    ep = await serveHttp('127.0.0.1:0', new Registry(), silentLogger(), { '/probe': probeRoute({ modules, clock: new AnchoredClock(), log: silentLogger() }) });
  });
  after(async () => {
    await ep.close();
    await zoo.close();
  });

  it('answers with blackbox names and types; module defaults to http_2xx', async () => {
    const r = await get(`?target=${encodeURIComponent(`${zoo.http}/ok`)}`);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const names = new Set([...r.text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!));
    for (const n of BLACKBOX_HTTP_NAMES) assert.ok(names.has(n), `${n} present`);
    assert.equal(metricValue(r.text, 'probe_success'), 1);
    assert.equal(metricValue(r.text, 'probe_http_status_code'), 200);
    assert.equal(metricValue(r.text, 'probe_http_version'), 1.1);
    assert.ok(metricValue(r.text, 'probe_http_duration_seconds{phase="connect"}')! > 0);
    assert.match(r.text, /^# HELP probe_success Displays whether or not the probe was a success$/m);
    assert.ok(!/probe_failure_info/.test(r.text.replace(/^#.*$/gm, '')), 'no failure sample on success');
  });

  it('a failed probe says why: probe_failure_info{failure_code}', async () => {
    const r = await get(`?module=http_2xx&target=${encodeURIComponent(`${zoo.http}/fail`)}`);
    assert.equal(metricValue(r.text, 'probe_success'), 0);
    assert.equal(metricValue(r.text, 'probe_http_status_code'), 500);
    assert.equal(metricValue(r.text, 'probe_failure_info{failure_code="http_status"}'), 1);
  });

  it('TLS module: TLS gauges with their labels', async () => {
    const r = await get(`?module=tls_ca&target=${encodeURIComponent(`${zoo.h2tls}/ok`)}`);
    assert.equal(metricValue(r.text, 'probe_success'), 1, r.text);
    assert.equal(metricValue(r.text, 'probe_http_version'), 2);
    assert.match(r.text, /^probe_tls_version_info\{version="TLS 1\.3"\} 1$/m);
    assert.match(r.text, /^probe_ssl_last_chain_info\{fingerprint_sha256="[0-9a-f]{64}",issuer="CN=probemesh test CA,O=probemesh test",subject="CN=good\.test",subjectalternative="localhost,good\.test"\} 1$/m);
    assert.ok(metricValue(r.text, 'probe_ssl_earliest_cert_expiry')! > Date.now() / 1000);
  });

  it('400 with blackbox messages for an unknown module or a missing target', async () => {
    const u = await get('?module=nope&target=x');
    assert.equal(u.status, 400);
    assert.equal(u.text, 'Unknown module "nope"\n');
    const t = await get('?module=http_2xx');
    assert.equal(t.status, 400);
    assert.equal(t.text, 'Target parameter is missing\n');
    const h = await get('?target=x', { 'X-Prometheus-Scrape-Timeout-Seconds': 'abc' });
    assert.equal(h.status, 500);
    assert.match(h.text, /^Failed to parse timeout from Prometheus header/);
  });

  it('timeout from X-Prometheus-Scrape-Timeout-Seconds minus the offset', async () => {
    const start = Date.now();
    const r = await get(`?target=${encodeURIComponent(`${zoo.http}/slow?ms=3000`)}`, { 'X-Prometheus-Scrape-Timeout-Seconds': '0.8' });
    const took = Date.now() - start;
    assert.equal(metricValue(r.text, 'probe_success'), 0);
    assert.equal(metricValue(r.text, 'probe_failure_info{failure_code="timeout"}'), 1);
    const d = metricValue(r.text, 'probe_duration_seconds')!;
    assert.ok(d >= 0.29 && d < 1, `probe took ${d} s (0.8 - 0.5 offset)`);
    assert.ok(took < 2_000, `answered in ${took} ms`);
  });

  it('debug=true: probe log, metrics and module configuration', async () => {
    const r = await get(`?debug=true&target=${encodeURIComponent(`${zoo.http}/redirect/2`)}`);
    assert.equal(r.status, 200);
    assert.match(r.text, /^Logs for the probe:\n/);
    assert.match(r.text, /Beginning probe/);
    assert.match(r.text, /"url":"[^"]*\/redirect\/2".*"msg":"Request hop"/);
    assert.match(r.text, /Probe succeeded/);
    assert.match(r.text, /\n\n\n\nMetrics that would have been returned:\n# HELP/);
    assert.match(r.text, /^probe_http_redirects 2$/m);
    assert.match(r.text, /Module configuration:\n\{\n {2}"prober": "http"/);
  });
});

describe('probeTimeoutSeconds', () => {
  it('follows blackbox getTimeout', () => {
    assert.equal(probeTimeoutSeconds(undefined, undefined, 0.5), 119.5);
    assert.equal(probeTimeoutSeconds('10', undefined, 0.5), 9.5);
    assert.equal(probeTimeoutSeconds('10', 5_000, 0.5), 5, 'module timeout caps');
    assert.equal(probeTimeoutSeconds('3', 5_000, 0.5), 2.5, 'scrape timeout caps');
    assert.equal(probeTimeoutSeconds('0.2', 5_000, 0.5), 5, 'negative → module timeout, as blackbox');
    assert.throws(() => probeTimeoutSeconds('x', undefined, 0.5), /invalid syntax/);
  });
});
