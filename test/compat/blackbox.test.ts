/**
 * Compatibility with the real prometheus-blackbox-exporter (Debian package, 0.23): the same
 * blackbox.yml loaded by both, the same local targets probed through both `/probe`
 * endpoints; for every case the metric names we answer must include blackbox's (except the
 * documented differences below) and `probe_success` must be equal.
 *
 * Our side is the prober's `/probe` route (probe-handler.ts) served exactly as startProber
 * serves it, with the modules loaded from the same file through `modules_file`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnchoredClock, HttpEndpoint, serveHttp, silentLogger } from '@probemesh/common';
import { loadModuleDefinitions, probeRoute, ProbeModules } from '@probemesh/prober';
import { HttpZoo, startHttpZoo } from '@probemesh/prober/dist/testing/http-zoo';
import { Registry } from 'prom-client';
import { ChildProc, findBinary, freePort, Procs, removeDir, tempDir, waitFor } from '../harness';

/**
 * Names blackbox answers that we do not, on purpose (none so far), by case id; and the
 * reason. Extras on our side are always allowed (probe_failure_info, probe_tls_cipher_info,
 * and the TLS gauges on a failed verification, which blackbox drops).
 */
const DOCUMENTED_MISSING: Readonly<Record<string, string>> = {};

/** Values compared too, when blackbox answers them. */
const COMPARED_VALUES = ['probe_http_status_code', 'probe_http_version', 'probe_http_ssl', 'probe_http_redirects', 'probe_failed_due_to_regex', 'probe_ip_protocol', 'probe_ip_addr_hash', 'probe_http_uncompressed_body_length', 'probe_http_content_length'];

/** Value differences on purpose, by `case id:metric`, with the reason. */
const DOCUMENTED_VALUE_DIFFERENCES: Readonly<Record<string, string>> = {
  // blackbox sets redirects = len(via) before refusing to follow: 1 redirect "followed" that was not.
  'redirect not followed:probe_http_redirects': 'we count redirects actually followed (0)',
  // Go closes the body of a redirect it refused to follow; we read the final response's body.
  'redirect not followed:probe_http_uncompressed_body_length': 'we read the body of the final (3xx) response',
  // /echo reflects the request headers, and the User-Agents differ (probemesh/x vs Blackbox Exporter/0.23.0).
  'POST with body:probe_http_uncompressed_body_length': 'echoed User-Agent differs',
  'POST with body:probe_http_content_length': 'echoed User-Agent differs',
};

function value(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

interface Case {
  id: string;
  module: string;
  target: string;
}

interface Answer {
  names: Set<string>;
  success: number | undefined;
  text: string;
}

function parse(text: string): Answer {
  const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const line = text.split('\n').find((l) => l.startsWith('probe_success '));
  return { names, success: line ? Number(line.split(' ')[1]) : undefined, text };
}

describe('blackbox_exporter compatibility (same blackbox.yml, same targets)', () => {
  let binary: string | undefined;
  try {
    binary = findBinary('prometheus-blackbox-exporter', 'prometheus-blackbox-exporter');
  } catch {
    binary = undefined;
  }
  const NOT_INSTALLED = 'prometheus-blackbox-exporter is not installed (Debian package prometheus-blackbox-exporter; npm test installs it as root)';
  const procs = new Procs();
  let zoo: HttpZoo;
  let dir = '';
  let ours: HttpEndpoint;
  let theirs: ChildProc;
  let theirsUrl = '';

  before(async () => {
    if (!binary) return;
    zoo = await startHttpZoo();
    dir = await tempDir('pm-compat-');
    const ca = `      tls_config:\n        ca_file: ${zoo.certs.caFile}\n`;
    const yml = [
      'modules:',
      '  http_2xx:',
      '    prober: http',
      '  http_ca:',
      '    prober: http',
      '    http:',
      ca.trimEnd(),
      '  http_seed:',
      '    prober: http',
      '    http:',
      '      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]',
      '      fail_if_not_ssl: true',
      ca.trimEnd(),
      '  http_body:',
      '    prober: http',
      '    http:',
      '      fail_if_body_matches_regexp: ["o+k"]',
      '  http_header:',
      '    prober: http',
      '    http:',
      '      fail_if_header_not_matches:',
      '        - header: X-Probe',
      "          regexp: '^yes$'",
      '  http_nofollow:',
      '    prober: http',
      '    http:',
      '      follow_redirects: false',
      '  http_post:',
      '    prober: http',
      '    timeout: 3s',
      '    http:',
      '      method: POST',
      '      headers:',
      '        Content-Type: application/json',
      "      body: '{}'",
      '  http_gzip:',
      '    prober: http',
      '    http:',
      '      compression: gzip',
      '  http_tls13:',
      '    prober: http',
      '    http:',
      '      tls_config:',
      `        ca_file: ${zoo.certs.caFile}`,
      '        min_version: TLS13',
      '  tcp_connect:',
      '    prober: tcp',
      '',
    ].join('\n');
    const file = join(dir, 'blackbox.yml');
    writeFileSync(file, yml);
    const modules = new ProbeModules(loadModuleDefinitions({ modules_file: file }));
    ours = await serveHttp('127.0.0.1:0', new Registry(), silentLogger(), { '/probe': probeRoute({ modules, clock: new AnchoredClock(), log: silentLogger() }) });
    const port = await freePort();
    theirsUrl = `http://127.0.0.1:${port}`;
    theirs = procs.spawn(binary, [`--config.file=${file}`, `--web.listen-address=127.0.0.1:${port}`], { name: 'blackbox_exporter' });
    await waitFor(async () => (await fetch(`${theirsUrl}/metrics`)).ok, { timeoutMs: 15_000, what: 'blackbox_exporter /metrics' });
  });

  after(async () => {
    if (!binary) return;
    await theirs?.stop();
    await ours?.close();
    await zoo?.close();
    if (dir) await removeDir(dir);
    assert.deepEqual(procs.alive(), [], 'blackbox_exporter stopped');
  });

  const cases = (): Case[] => {
    return [
      { id: 'http 200', module: 'http_2xx', target: `${zoo.http}/ok` },
      { id: 'http 500', module: 'http_2xx', target: `${zoo.http}/fail` },
      { id: 'redirect chain', module: 'http_2xx', target: `${zoo.http}/redirect/3` },
      { id: 'redirect not followed', module: 'http_nofollow', target: `${zoo.http}/redirect/1` },
      { id: 'refused', module: 'http_2xx', target: `${zoo.refused}/` },
      { id: 'reset', module: 'http_2xx', target: `${zoo.reset}/` },
      { id: 'h2 TLS, CA file', module: 'http_ca', target: `${zoo.h2tls}/ok` },
      { id: 'h2 TLS, untrusted (no CA file)', module: 'http_2xx', target: `${zoo.h2tls}/ok` },
      { id: 'TLS 1.2-only', module: 'http_ca', target: `${zoo.tls12}/ok` },
      { id: 'TLS 1.2-only, min_version TLS13', module: 'http_tls13', target: `${zoo.tls12}/ok` },
      { id: 'expired cert', module: 'http_ca', target: `${zoo.expired}/ok` },
      { id: 'wrong-host cert', module: 'http_ca', target: `${zoo.wrongHost}/ok` },
      { id: 'self-signed cert', module: 'http_ca', target: `${zoo.untrusted}/ok` },
      { id: 'seed module on http', module: 'http_seed', target: `${zoo.http}/ok` },
      { id: 'seed module on https h2', module: 'http_seed', target: `${zoo.h2tls}/ok` },
      { id: 'body regex', module: 'http_body', target: `${zoo.http}/ok` },
      { id: 'header regex', module: 'http_header', target: `${zoo.http}/ok` },
      { id: 'POST with body', module: 'http_post', target: `${zoo.http}/echo` },
      { id: 'gzip', module: 'http_gzip', target: `${zoo.http}/gzip` },
    ];
  };
  const tcpCases = (): Case[] => {
    const hp = (u: string): string => new URL(u).host;
    return [
      { id: 'tcp connect', module: 'tcp_connect', target: hp(zoo.http) },
      { id: 'tcp refused', module: 'tcp_connect', target: hp(zoo.refused) },
    ];
  };

  /** Probes every case through both exporters; returns the differences found. */
  const compare = async (t: { diagnostic(s: string): void }, list: Case[]): Promise<string[]> => {
    const rows: string[] = [];
    const failures: string[] = [];
    for (const c of list) {
      const q = `/probe?module=${c.module}&target=${encodeURIComponent(c.target)}`;
      const headers = { 'X-Prometheus-Scrape-Timeout-Seconds': '5' };
      const [a, b] = await Promise.all([fetch(`${ours.url}${q}`, { headers }), fetch(`${theirsUrl}${q}`, { headers })]);
      assert.equal(a.status, 200, `${c.id}: ours answered ${a.status}`);
      assert.equal(b.status, 200, `${c.id}: blackbox answered ${b.status}`);
      const o = parse(await a.text());
      const th = parse(await b.text());
      const missing = [...th.names].filter((n) => !o.names.has(n) && !DOCUMENTED_MISSING[`${c.id}:${n}`]);
      const extra = [...o.names].filter((n) => !th.names.has(n));
      rows.push(`${c.id.padEnd(34)} success ours=${o.success} blackbox=${th.success}  extra: ${extra.join(',') || '-'}`);
      if (missing.length) failures.push(`${c.id}: missing ${missing.join(', ')}`);
      for (const name of COMPARED_VALUES) {
        const [ov, tv] = [value(o.text, name), value(th.text, name)];
        if (tv !== undefined && ov !== tv && !DOCUMENTED_VALUE_DIFFERENCES[`${c.id}:${name}`]) failures.push(`${c.id}: ${name} ours=${ov} blackbox=${tv}`);
      }
      if (o.success !== th.success) failures.push(`${c.id}: probe_success ours=${o.success} blackbox=${th.success}\n--- ours\n${o.text}\n--- blackbox\n${th.text}`);
    }
    for (const r of rows) t.diagnostic(r);
    return failures;
  };

  it('http: ours ⊇ blackbox metric names, same probe_success and values', async (t) => {
    if (!binary) return t.skip(NOT_INSTALLED);
    t.diagnostic('dns/icmp/grpc cases are not run here: the zoo has no DNS/gRPC server');
    assert.deepEqual(await compare(t, cases()), []);
  });

  it('tcp: ours ⊇ blackbox metric names, same probe_success and values', async (t) => {
    if (!binary) return t.skip(NOT_INSTALLED);
    assert.deepEqual(await compare(t, tcpCases()), []);
  });

  it('unknown module and missing target: same status and message', async (t) => {
    if (!binary) return t.skip(NOT_INSTALLED);
    for (const q of ['/probe?module=nope&target=x', '/probe?module=http_2xx']) {
      const [a, b] = await Promise.all([fetch(`${ours.url}${q}`), fetch(`${theirsUrl}${q}`)]);
      assert.equal(a.status, b.status, q);
      assert.equal(await a.text(), await b.text(), q);
    }
  });
});
