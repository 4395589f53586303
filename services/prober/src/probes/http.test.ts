import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo, createServer as createNetServer, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnchoredClock, silentLogger } from '@probemesh/common';
import { httpProbe, httpProbeSchema, HttpProbeOptions, HTTP_PHASES, LookupFn } from './http';
import { FailureCodes } from './failure';
import { ProbeOutcome, ProbeTarget } from './types';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };
const defaults = (): HttpProbeOptions => httpProbeSchema.defaultValue!();
/** Options as a blackbox `http:` block would give them. */
function httpOpts(raw: object): HttpProbeOptions {
  const ctx = { issues: [], envSources: new Map() };
  const v = httpProbeSchema.parse(raw, 'http', ctx);
  assert.ok(v, JSON.stringify(ctx.issues));
  return v;
}

function target(url: string, timeoutMs = 2_000): ProbeTarget {
  return { id: 't', url, module: 'http_2xx', timeoutMs, labels: {} };
}

async function probe(url: string, opts: HttpProbeOptions = defaults(), timeoutMs = 2_000, lookup?: LookupFn): Promise<ProbeOutcome> {
  const p = httpProbe(opts, { lookup });
  return p.run(target(url, timeoutMs), AbortSignal.timeout(timeoutMs), ctx);
}

function phase(o: ProbeOutcome, name: string): bigint {
  const p = o.phases.find((x) => x.name === name);
  assert.ok(p, `phase ${name} present`);
  return p.durationNs;
}

function assertPhasesTile(o: ProbeOutcome): void {
  assert.deepEqual(o.phases.map((p) => p.name), [...HTTP_PHASES]);
  for (const p of o.phases) assert.ok(p.durationNs >= 0n, `${p.name} >= 0`);
}

async function listen(server: Server | NetServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('http probe', () => {
  const servers: (Server | NetServer)[] = [];
  let port200 = 0;
  let port500 = 0;
  let portReset = 0;
  let portSlow = 0;
  let portBig = 0;
  let closedPort = 0;

  before(async () => {
    const ok = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('hello ');
      setTimeout(() => res.end('world'), 5);
    });
    const err = createHttpServer((_req, res) => {
      res.writeHead(500);
      res.end('boom');
    });
    const reset = createNetServer((s) => s.resetAndDestroy());
    const slow = createHttpServer(() => {
      /* never answers */
    });
    const big = createHttpServer((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.alloc(64 * 1024));
    });
    servers.push(ok, err, reset, slow, big);
    [port200, port500, portReset, portSlow, portBig] = await Promise.all([listen(ok), listen(err), listen(reset), listen(slow), listen(big)]);
    const tmp = createNetServer();
    closedPort = await listen(tmp);
    await new Promise((r) => tmp.close(r));
  });
  after(() => {
    for (const s of servers) {
      if ('closeAllConnections' in s) s.closeAllConnections();
      s.close();
    }
  });

  it('200: success with 5 phases that add up to the duration', async () => {
    const start = clock.monoNs();
    const o = await probe(`http://127.0.0.1:${port200}/health?x=1`);
    const measured = clock.monoNs() - start;
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.failureCode, '');
    assert.equal(o.httpStatusCode, 200);
    assert.equal(o.httpVersion, 1.1);
    assertPhasesTile(o);
    const sum = o.phases.reduce((s, p) => s + p.durationNs, 0n);
    assert.ok(sum > 0n && sum <= measured, `sum ${sum} within the measured ${measured}`);
    // IP literal: no lookup; resolve holds only the socket set-up before the connect() syscall
    // (the connect phase spans the syscall, as blackbox's does).
    assert.ok(phase(o, 'resolve') < 20_000_000n, `IP literal: no lookup (resolve ${phase(o, 'resolve')} ns)`);
    assert.ok(phase(o, 'connect') > 0n, 'connect > 0');
    assert.equal(phase(o, 'tls'), 0n, 'no TLS for http');
    assert.ok(phase(o, 'processing') > 0n);
    assert.ok(phase(o, 'transfer') > 0n);
    // The server ends the body 5 ms after the first chunk; under load both chunks may be read
    // at once, so the delay is only guaranteed to fall inside processing + transfer.
    assert.ok(phase(o, 'processing') + phase(o, 'transfer') >= 4_000_000n, `processing + transfer cover the 5 ms body delay`);
  });

  it('resolves names through the injected lookup and times it', async () => {
    const seen: string[] = [];
    const lookup: LookupFn = async (h) => {
      seen.push(h);
      await new Promise((r) => setTimeout(r, 3));
      return { address: '127.0.0.1', family: 4 };
    };
    const o = await probe(`http://probe-test.invalid:${port200}/`, defaults(), 2_000, lookup);
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(seen, ['probe-test.invalid']);
    assert.ok(phase(o, 'resolve') >= 2_000_000n, `resolve ${phase(o, 'resolve')}`);
  });

  it('NXDOMAIN from the lookup → dns_nxdomain, other lookup errors → dns_error', async () => {
    const nx: LookupFn = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND' });
    };
    const o = await probe('http://nope.invalid/', defaults(), 2_000, nx);
    assert.equal(o.failureCode, FailureCodes.DNS_NXDOMAIN);
    assert.match(o.failureMessage, /nope\.invalid/);
    const fail: LookupFn = async () => {
      throw Object.assign(new Error('servfail'), { code: 'ESERVFAIL' });
    };
    assert.equal((await probe('http://x.invalid/', defaults(), 2_000, fail)).failureCode, FailureCodes.DNS_ERROR);
  });

  it('500 → http_status with the status code, body still read', async () => {
    const o = await probe(`http://127.0.0.1:${port500}/`);
    assert.equal(o.success, false);
    assert.equal(o.failureCode, FailureCodes.HTTP_STATUS);
    assert.equal(o.httpStatusCode, 500);
    assertPhasesTile(o);
  });

  it('valid_status_codes makes 500 a success', async () => {
    const o = await probe(`http://127.0.0.1:${port500}/`, httpOpts({ valid_status_codes: [500] }));
    assert.equal(o.success, true);
    assert.equal(o.httpStatusCode, 500);
  });

  it('closed port → connect_refused', async () => {
    const o = await probe(`http://127.0.0.1:${closedPort}/`);
    assert.equal(o.failureCode, FailureCodes.CONNECT_REFUSED);
    assert.equal(o.httpStatusCode, 0);
    assertPhasesTile(o);
    assert.equal(phase(o, 'processing'), 0n);
  });

  it('server that accepts then resets → reset', async () => {
    const o = await probe(`http://127.0.0.1:${portReset}/`);
    assert.equal(o.failureCode, FailureCodes.RESET, o.failureMessage);
    assert.ok(phase(o, 'connect') > 0n);
  });

  it('server slower than the timeout → timeout, promptly, phases add up to about the timeout', async () => {
    const start = clock.monoNs();
    const o = await probe(`http://127.0.0.1:${portSlow}/`, defaults(), 150);
    const took = Number(clock.monoNs() - start) / 1e6;
    assert.equal(o.failureCode, FailureCodes.TIMEOUT);
    assert.match(o.failureMessage, /processing/);
    assert.ok(took >= 140 && took < 1_000, `returned after ${took} ms`);
    const sum = Number(o.phases.reduce((s, p) => s + p.durationNs, 0n)) / 1e6;
    assert.ok(sum >= 140 && sum <= took, `phases sum ${sum} ms`);
    assert.ok(phase(o, 'processing') > 100_000_000n);
    assert.equal(phase(o, 'transfer'), 0n);
  });

  it('body larger than body_size_limit → error', async () => {
    const o = await probe(`http://127.0.0.1:${portBig}/`, httpOpts({ body_size_limit: '1KB' }));
    assert.equal(o.failureCode, FailureCodes.ERROR);
    assert.match(o.failureMessage, /body_size_limit/);
    assert.equal((await probe(`http://127.0.0.1:${portBig}/`)).success, true);
  });

  it('invalid URL → invalid_target', async () => {
    assert.equal((await probe('not a url')).failureCode, FailureCodes.INVALID_TARGET);
    assert.equal((await probe('ftp://127.0.0.1/')).failureCode, FailureCodes.INVALID_TARGET);
  });

  describe('https', () => {
    let dir = '';
    let port = 0;
    let server: Server | undefined;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pm-prober-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=probemesh-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:good.test'], { stdio: 'ignore' });
      server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
        res.writeHead(200);
        res.end('secure');
      });
      port = await listen(server);
    });
    after(() => {
      server?.closeAllConnections();
      server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('self-signed certificate → tls_untrusted, tls phase > 0', async () => {
      const o = await probe(`https://127.0.0.1:${port}/`);
      assert.equal(o.failureCode, FailureCodes.TLS_UNTRUSTED, o.failureMessage);
      assert.ok(phase(o, 'connect') > 0n);
      assert.ok(phase(o, 'tls') > 0n, 'tls > 0');
      assert.equal(phase(o, 'processing'), 0n);
    });

    it('tls_config.ca_file trusts it: success with all phases and TLS gauges', async () => {
      const opts = httpOpts({ tls_config: { ca_file: join(dir, 'cert.pem') } });
      const o = await probe(`https://127.0.0.1:${port}/`, opts);
      assert.equal(o.success, true, o.failureMessage);
      assert.equal(o.httpStatusCode, 200);
      assertPhasesTile(o);
      assert.ok(phase(o, 'connect') > 0n && phase(o, 'tls') > 0n && phase(o, 'processing') > 0n);
      const expiry = o.gauges.find((g) => g.name === 'probe_ssl_earliest_cert_expiry');
      assert.ok(expiry && expiry.value > Date.now() / 1000 && expiry.value < Date.now() / 1000 + 3 * 86400, `expiry ${expiry?.value}`);
      assert.ok(o.gauges.some((g) => g.name === 'probe_tls_version_info' && g.labels?.version?.startsWith('TLS 1.')));
    });

    it('name not in the certificate → tls_cert_hostname (SNI + lookup)', async () => {
      const opts = httpOpts({ tls_config: { ca_file: join(dir, 'cert.pem') } });
      const lookup: LookupFn = async () => ({ address: '127.0.0.1', family: 4 });
      const bad = await probe(`https://wrong.test:${port}/`, opts, 2_000, lookup);
      assert.equal(bad.failureCode, FailureCodes.TLS_CERT_HOSTNAME, bad.failureMessage);
      const good = await probe(`https://good.test:${port}/`, opts, 2_000, lookup);
      assert.equal(good.success, true, good.failureMessage);
    });

    it('insecure_skip_verify accepts the self-signed certificate', async () => {
      const o = await probe(`https://127.0.0.1:${port}/`, httpOpts({ tls_config: { insecure_skip_verify: true } }));
      assert.equal(o.success, true, o.failureMessage);
    });
  });
});
