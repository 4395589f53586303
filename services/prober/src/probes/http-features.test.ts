import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnchoredClock, silentLogger } from '@probemesh/common';
import { HttpZoo, startHttpZoo, ZOO_COMPRESSED_TEXT } from '../testing/http-zoo';
import { FailureCodes } from './failure';
import { httpProbe, HttpProbeDeps, httpProbeSchema, HttpProbeOptions } from './http';
import { ProbeOutcome } from './types';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };

function opts(raw: object): HttpProbeOptions {
  const pc = { issues: [], envSources: new Map() };
  const v = httpProbeSchema.parse(raw, 'http', pc);
  assert.ok(v, JSON.stringify(pc.issues));
  return v;
}

async function run(url: string, raw: object = {}, deps: HttpProbeDeps = {}, timeoutMs = 3_000): Promise<ProbeOutcome> {
  return httpProbe(opts(raw), deps).run({ id: 't', url, module: 'm', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}

const gauge = (o: ProbeOutcome, name: string) => o.gauges.find((g) => g.name === name);
const phaseSum = (o: ProbeOutcome): bigint => o.phases.reduce((s, p) => s + p.durationNs, 0n);
const phase = (o: ProbeOutcome, n: string): bigint => o.phases.find((p) => p.name === n)!.durationNs;

describe('http probe against the zoo', () => {
  let zoo: HttpZoo;
  let ca: object;
  before(async () => {
    zoo = await startHttpZoo();
    ca = { tls_config: { ca_file: zoo.certs.caFile } };
  });
  after(() => zoo.close());

  it('HTTP/1.1: blackbox gauges (content length, body length, ip protocol and hash, last-modified)', async () => {
    const o = await run(`${zoo.http}/ok`);
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpVersion, 1.1);
    assert.equal(gauge(o, 'probe_http_content_length')?.value, 2);
    assert.equal(gauge(o, 'probe_http_uncompressed_body_length')?.value, 2);
    assert.equal(gauge(o, 'probe_http_redirects')?.value, 0);
    assert.equal(gauge(o, 'probe_http_ssl')?.value, 0);
    assert.equal(gauge(o, 'probe_failed_due_to_regex')?.value, 0);
    assert.equal(gauge(o, 'probe_ip_protocol')?.value, 4);
    assert.equal(gauge(o, 'probe_ip_addr_hash')?.value, 3668918509, 'FNV-1a of 127.0.0.1 as blackbox computes it');
    assert.equal(gauge(o, 'probe_http_last_modified_timestamp_seconds')?.value, Date.parse('2025-01-01T00:00:00Z') / 1000);
    assert.equal(o.hops, undefined);
  });

  it('h2 over TLS (ALPN) with ca_file: version 2 and every TLS gauge', async () => {
    const o = await run(`${zoo.h2tls}/ok`, { ...ca, valid_http_versions: ['HTTP/2.0'] });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpVersion, 2);
    assert.equal(o.httpStatusCode, 200);
    assert.ok(phase(o, 'tls') > 0n && phase(o, 'connect') > 0n && phase(o, 'processing') > 0n);
    assert.equal(gauge(o, 'probe_http_ssl')?.value, 1);
    assert.equal(gauge(o, 'probe_tls_version_info')?.labels?.version, 'TLS 1.3');
    assert.match(gauge(o, 'probe_tls_cipher_info')?.labels?.cipher ?? '', /^TLS_/);
    const expiry = gauge(o, 'probe_ssl_earliest_cert_expiry')!.value;
    assert.ok(expiry > Date.now() / 1000 + 19 * 86400 && expiry < Date.now() / 1000 + 21 * 86400, `leaf expires in ~20 days: ${expiry}`);
    assert.ok(gauge(o, 'probe_ssl_last_chain_expiry_timestamp_seconds'));
    const info = gauge(o, 'probe_ssl_last_chain_info')!.labels!;
    assert.equal(info.subject, 'CN=good.test');
    assert.equal(info.issuer, 'CN=probemesh test CA,O=probemesh test');
    assert.equal(info.subjectalternative, 'localhost,good.test');
    assert.match(info.fingerprint_sha256 ?? '', /^[0-9a-f]{64}$/);
  });

  it('enable_http2: false stays on HTTP/1.1; valid_http_versions then fails with http_version', async () => {
    const o = await run(`${zoo.h2tls}/ok`, { ...ca, enable_http2: false });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpVersion, 1.1);
    const v = await run(`${zoo.h2tls}/ok`, { ...ca, enable_http2: false, valid_http_versions: ['HTTP/2.0'] });
    assert.equal(v.failureCode, FailureCodes.HTTP_VERSION);
  });

  it('h2c with http2_prior_knowledge', async () => {
    const o = await run(`${zoo.h2c}/ok`, { http2_prior_knowledge: true });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpVersion, 2);
    assert.equal(phase(o, 'tls'), 0n);
  });

  it('seed-style module (HTTP/1.1 or 2.0, fail_if_not_ssl): http fails http_not_ssl, https h2 passes', async () => {
    const seed = { valid_http_versions: ['HTTP/1.1', 'HTTP/2.0'], fail_if_not_ssl: true, ...ca };
    const plain = await run(`${zoo.http}/ok`, seed);
    assert.equal(plain.failureCode, FailureCodes.HTTP_NOT_SSL);
    const tls = await run(`${zoo.h2tls}/ok`, seed);
    assert.equal(tls.success, true, tls.failureMessage);
    const ssl = await run(`${zoo.h2tls}/ok`, { ...ca, fail_if_ssl: true });
    assert.equal(ssl.failureCode, FailureCodes.HTTP_SSL);
  });

  it('redirect chain: one hop each, hop times tile the probe, probe_http_redirects', async () => {
    const o = await run(`${zoo.http}/redirect/3`);
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(o.hops?.map((h) => h.statusCode), [302, 302, 302, 200]);
    assert.deepEqual(o.hops?.map((h) => new URL(h.url).pathname), ['/redirect/3', '/redirect/2', '/redirect/1', '/ok']);
    for (const h of o.hops!.slice(0, 3)) assert.ok(h.durationNs >= 4_000_000n, `each redirect hop waits 5 ms: ${h.durationNs}`);
    assert.equal(o.hops!.reduce((s, h) => s + h.durationNs, 0n), phaseSum(o), 'hops add up to the phases');
    assert.equal(gauge(o, 'probe_http_redirects')?.value, 3);
    const nofollow = await run(`${zoo.http}/redirect/3`, { follow_redirects: false });
    assert.equal(nofollow.failureCode, FailureCodes.HTTP_STATUS);
    assert.equal(nofollow.httpStatusCode, 302);
    const loop = await run(`${zoo.http}/loop`);
    assert.equal(loop.failureCode, FailureCodes.HTTP_STATUS);
    assert.match(loop.failureMessage, /stopped after 10 redirects/);
    assert.equal(loop.hops?.length, 11);
  });

  it('redirect from http to https: the final hop decides probe_http_ssl and the TLS gauges', async () => {
    const port = new URL(zoo.h2tls).port;
    const o = await run(`${zoo.http}/to-https?port=${port}`, { ...ca, fail_if_not_ssl: true });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_http_ssl')?.value, 1);
    assert.ok(gauge(o, 'probe_tls_version_info'));
  });

  it('TLS 1.2-only server: TLS 1.2 reported; min_version TLS13 → tls_handshake; max_version caps', async () => {
    const o = await run(`${zoo.tls12}/ok`, ca);
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_tls_version_info')?.labels?.version, 'TLS 1.2');
    assert.equal(o.httpVersion, 1.1, 'no h2 on this server');
    const min13 = await run(`${zoo.tls12}/ok`, { tls_config: { ca_file: zoo.certs.caFile, min_version: 'TLS13' } });
    assert.equal(min13.failureCode, FailureCodes.TLS_HANDSHAKE, min13.failureMessage);
    const max12 = await run(`${zoo.h2tls}/ok`, { tls_config: { ca_file: zoo.certs.caFile, max_version: 'TLS12' } });
    assert.equal(gauge(max12, 'probe_tls_version_info')?.labels?.version, 'TLS 1.2');
  });

  it('expired certificate → tls_cert_expired, and probe_ssl_earliest_cert_expiry is still there', async () => {
    const o = await run(`${zoo.expired}/ok`, ca);
    assert.equal(o.failureCode, FailureCodes.TLS_CERT_EXPIRED, o.failureMessage);
    assert.equal(gauge(o, 'probe_ssl_earliest_cert_expiry')?.value, Date.parse('2020-01-02T00:00:00Z') / 1000);
    assert.ok(phase(o, 'tls') > 0n);
    assert.equal(phase(o, 'processing'), 0n, 'no request sent to an unverified server');
  });

  it('wrong-host certificate → tls_cert_hostname; server_name fixes it', async () => {
    const o = await run(`${zoo.wrongHost}/ok`, ca);
    assert.equal(o.failureCode, FailureCodes.TLS_CERT_HOSTNAME, o.failureMessage);
    const named = await run(`${zoo.wrongHost}/ok`, { tls_config: { ca_file: zoo.certs.caFile, server_name: 'wrong.test' } });
    assert.equal(named.success, true, named.failureMessage);
  });

  it('untrusted CA → tls_untrusted with the TLS gauges; insecure_skip_verify passes', async () => {
    const o = await run(`${zoo.untrusted}/ok`, ca);
    assert.equal(o.failureCode, FailureCodes.TLS_UNTRUSTED, o.failureMessage);
    assert.equal(gauge(o, 'probe_ssl_last_chain_info')?.labels?.subject, 'CN=untrusted.test');
    assert.equal((await run(`${zoo.untrusted}/ok`, { tls_config: { insecure_skip_verify: true } })).success, true);
  });

  it('body regexes → body_regex and probe_failed_due_to_regex', async () => {
    const m = await run(`${zoo.http}/ok`, { fail_if_body_matches_regexp: ['o+k'] });
    assert.equal(m.failureCode, FailureCodes.BODY_REGEX);
    assert.equal(gauge(m, 'probe_failed_due_to_regex')?.value, 1);
    assert.equal((await run(`${zoo.http}/ok`, { fail_if_body_not_matches_regexp: ['^ok$'] })).success, true);
    assert.equal((await run(`${zoo.http}/ok`, { fail_if_body_not_matches_regexp: ['(?i)^OK$'] })).success, true, 'Go inline flags');
    assert.equal((await run(`${zoo.http}/ok`, { fail_if_body_not_matches_regexp: ['nope'] })).failureCode, FailureCodes.BODY_REGEX);
  });

  it('header regexes → header_regex (match, not match, missing, allow_missing, multi-valued)', async () => {
    const url = `${zoo.http}/ok`;
    assert.equal((await run(url, { fail_if_header_matches: [{ header: 'X-Probe', regexp: 'yes' }] })).failureCode, FailureCodes.HEADER_REGEX);
    assert.equal((await run(url, { fail_if_header_not_matches: [{ header: 'x-probe', regexp: '^no$' }] })).failureCode, FailureCodes.HEADER_REGEX);
    assert.equal((await run(url, { fail_if_header_not_matches: [{ header: 'X-Absent', regexp: '.*' }] })).failureCode, FailureCodes.HEADER_REGEX);
    assert.equal((await run(url, { fail_if_header_matches: [{ header: 'Set-Cookie', regexp: '.*', allow_missing: true }] })).success, true);
    const cookies = `${zoo.http}/cookies`;
    assert.equal((await run(cookies, { fail_if_header_not_matches: [{ header: 'Set-Cookie', regexp: '^session=' }] })).success, true, 'one of the values matches');
    assert.equal((await run(cookies, { fail_if_header_matches: [{ header: 'Set-Cookie', regexp: '^session=' }] })).failureCode, FailureCodes.HEADER_REGEX);
  });

  it('method, body, headers, Host, basic auth, bearer token (file) reach the server', async () => {
    const o = await run(`${zoo.http}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json', Host: 'vhost.test' }, basic_auth: { username: 'u', password: 'p' } });
    assert.equal(o.success, true, o.failureMessage);
    let seen = zoo.lastRequest('/echo')!;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.body, '{"a":1}');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers.host, 'vhost.test');
    assert.equal(seen.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
    const tokenFile = join(zoo.certs.dir, 'token');
    writeFileSync(tokenFile, 'tok-123\n');
    await run(`${zoo.h2tls}/echo`, { ...ca, bearer_token_file: tokenFile });
    seen = zoo.lastRequest('/echo')!;
    assert.equal(seen.headers.authorization, 'Bearer tok-123', 'over h2 too');
  });

  for (const c of ['gzip', 'deflate', 'br'] as const) {
    it(`compression: ${c} decoded, Accept-Encoding sent`, async () => {
      const o = await run(`${zoo.http}/${c}`, { compression: c, fail_if_body_not_matches_regexp: ['^hello compressed world'] });
      assert.equal(o.success, true, o.failureMessage);
      assert.equal(gauge(o, 'probe_http_uncompressed_body_length')?.value, ZOO_COMPRESSED_TEXT.length);
      assert.ok(gauge(o, 'probe_http_content_length')!.value < ZOO_COMPRESSED_TEXT.length);
      assert.equal(zoo.lastRequest(`/${c}`)?.headers['accept-encoding'], c);
    });
  }

  it('compression that does not match the body → error', async () => {
    const o = await run(`${zoo.http}/ok`, { compression: 'gzip' });
    assert.equal(o.failureCode, FailureCodes.ERROR);
    assert.match(o.failureMessage, /gzip/);
  });

  it('body_size_limit ("1KB") fails a larger body', async () => {
    const o = await run(`${zoo.http}/big?bytes=4096`, { body_size_limit: '1KB' });
    assert.equal(o.failureCode, FailureCodes.ERROR);
    assert.match(o.failureMessage, /body_size_limit \(1024 bytes\)/);
    assert.equal((await run(`${zoo.http}/big?bytes=1000`, { body_size_limit: '1KB' })).success, true);
  });

  it('preferred_ip_protocol / ip_protocol_fallback choose the address', async () => {
    const port = new URL(zoo.http).port;
    const both = { resolveAll: async () => [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }] };
    const v4 = await run(`http://dual.test:${port}/ok`, { preferred_ip_protocol: 'ip4' }, both);
    assert.equal(v4.success, true, v4.failureMessage);
    assert.equal(gauge(v4, 'probe_ip_protocol')?.value, 4);
    const v6 = await run(`http://dual.test:${port}/ok`, {}, both);
    assert.equal(gauge(v6, 'probe_ip_protocol')?.value, 6, 'ip6 is the default, like blackbox');
    const only4 = { resolveAll: async () => [{ address: '127.0.0.1', family: 4 }] };
    assert.equal((await run(`http://v4.test:${port}/ok`, {}, only4)).success, true, 'falls back to ip4');
    assert.equal((await run(`http://v4.test:${port}/ok`, { ip_protocol_fallback: false }, only4)).failureCode, FailureCodes.DNS_NXDOMAIN);
  });

  it('reset after accept → reset; refused port → connect_refused', async () => {
    assert.equal((await run(`${zoo.reset}/`)).failureCode, FailureCodes.RESET);
    assert.equal((await run(`${zoo.refused}/`)).failureCode, FailureCodes.CONNECT_REFUSED);
  });

  it('slow first byte → timeout during processing, phases add up to about the timeout', async () => {
    const o = await run(`${zoo.h2tls}/slow?ms=2000`, ca, {}, 200);
    assert.equal(o.failureCode, FailureCodes.TIMEOUT);
    assert.match(o.failureMessage, /processing/);
    const ms = Number(phaseSum(o)) / 1e6;
    assert.ok(ms >= 190 && ms < 1_000, `phases sum ${ms} ms`);
  });
});

describe('http options', () => {
  it('reject unknown keys, bad regexes and unsupported blackbox keys with their path', () => {
    const issues = (raw: object): string[] => {
      const pc = { issues: [] as { path: string; message: string }[], envSources: new Map() };
      httpProbeSchema.parse(raw, 'modules.m.http', pc);
      return pc.issues.map((i) => `${i.path}: ${i.message}`);
    };
    assert.match(issues({ valid_status_code: [200] })[0] ?? '', /^modules\.m\.http\.valid_status_code: unknown key/);
    assert.match(issues({ fail_if_body_matches_regexp: ['('] })[0] ?? '', /^modules\.m\.http\.fail_if_body_matches_regexp\[0\]: invalid regular expression/);
    assert.match(issues({ proxy_url: 'http://proxy:3128' })[0] ?? '', /^modules\.m\.http\.proxy_url: not supported/);
    assert.match(issues({ valid_http_versions: ['HTTP/3'] })[0] ?? '', /valid_http_versions\[0\]/);
    assert.match(issues({ tls_config: { min_version: 'TLS13', max_version: 'TLS12' } })[0] ?? '', /tls_config\.min_version: must not be above/);
    assert.match(issues({ bearer_token: 'a', basic_auth: { username: 'u' } })[0] ?? '', /at most one of/);
    assert.match(issues({ headers: { 'Bad Name': 'x' } })[0] ?? '', /^modules\.m\.http\.headers\.Bad Name: invalid header name/);
    assert.match(issues({ headers: { 'X-Injected': 'a\r\nX-Evil: 1' } })[0] ?? '', /^modules\.m\.http\.headers\.X-Injected: a header value must not contain CR, LF or NUL/);
    assert.deepEqual(issues({ body_size_limit: '10MB', no_follow_redirects: true, headers: { 'X-Ok': 'a: b, "c"' } }), []);
  });
});
