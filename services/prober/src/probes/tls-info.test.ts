import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AddressInfo, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, createServer, Server, TLSSocket } from 'node:tls';
import { prepareTls as prepare, PreparedTls, skipNodeIdentityCopy, TlsConfig, tlsConnectOptions, tlsGauges, verifyPeer } from './tls-info';
import { FailureCodes } from './failure';
import { GaugeValue } from './types';

/**
 * Chain expiry, chain info and the host-name check on a real handshake with a chain
 * root → intermediate → leaf (the server sends leaf + intermediate; the root is only in
 * the CA file), with expiry dates chosen so each certificate can be the earliest.
 */
describe('tls-info: chain walk and name checks', () => {
  let dir: string;
  const servers: Server[] = [];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string, days: number, subj: string): void => ssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', String(days), '-subj', subj, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const sign = (name: string, issuer: string, days: number, subj: string, ext: string): void => {
    ssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', String(days), '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  };
  const expiry = (name: string): number => Date.parse(execFileSync('openssl', ['x509', '-in', join(dir, `${name}.crt`), '-noout', '-enddate'], { encoding: 'utf8' }).trim().replace('notAfter=', '')) / 1000;
  const read = (f: string): Buffer => readFileSync(join(dir, f));

  const serve = async (key: string, chain: string[]): Promise<number> => {
    // The client's suite order decides (as with OpenSSL's and nginx's defaults).
    const s = createServer({ key: read(`${key}.key`), cert: Buffer.concat(chain.map((c) => read(`${c}.crt`))), honorCipherOrder: false }, (c) => c.end());
    s.on('tlsClientError', () => {});
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  };

  /** Handshake like the probes do; gauges and verification of `host`. */
  const probe = (port: number, tls: PreparedTls, host: string): Promise<{ gauges: GaugeValue[]; bad: ReturnType<typeof verifyPeer> }> =>
    new Promise((resolve, reject) => {
      const sock = netConnect({ host: '127.0.0.1', port });
      const t: TLSSocket = tlsConnect({ socket: sock, ...tlsConnectOptions(tls, host) });
      skipNodeIdentityCopy(t);
      t.once('error', reject);
      t.once('secureConnect', () => {
        const bad = verifyPeer(t, tls, host);
        const gauges = tlsGauges(t, tls);
        t.destroy();
        resolve({ gauges, bad });
      });
    });
  const prepareTls = (c: Partial<TlsConfig>): PreparedTls =>
    prepare({ ca_file: undefined, cert_file: undefined, key_file: undefined, server_name: undefined, min_version: undefined, max_version: undefined, insecure_skip_verify: false, ...c });
  const gauge = (g: GaugeValue[], name: string): GaugeValue | undefined => g.find((x) => x.name === name);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pm-tls-info-'));
    ca('root', 30, '/O=pm root/CN=pm root');
    ca('root-soon', 3, '/CN=pm root soon');
    const inter = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
    sign('inter', 'root', 10, '/O=pm, inter/CN=pm inter', inter);
    sign('inter-soon', 'root-soon', 10, '/CN=pm inter 2', inter);
    const leaf = 'subjectAltName=DNS:*.example.test,DNS:host.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
    sign('leaf', 'inter', 20, '/CN=leaf.test', leaf);
    sign('leaf2', 'inter-soon', 20, '/CN=leaf2.test', leaf);
    sign('cn-only', 'inter', 20, '/CN=cn.test', 'extendedKeyUsage=serverAuth\n');
  });
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  it('earliest expiry walks the sent intermediate; chain info is the leaf in Go name order', async () => {
    const port = await serve('leaf', ['leaf', 'inter']);
    const tls = prepareTls({ ca_file: join(dir, 'root.crt') });
    for (let i = 0; i < 2; i++) {
      // The second handshake answers from the per-leaf cache: same figures.
      const { gauges, bad } = await probe(port, tls, 'host.test');
      assert.equal(bad, undefined);
      assert.equal(gauge(gauges, 'probe_ssl_earliest_cert_expiry')?.value, expiry('inter'));
      assert.equal(gauge(gauges, 'probe_ssl_last_chain_expiry_timestamp_seconds')?.value, expiry('inter'));
      const info = gauge(gauges, 'probe_ssl_last_chain_info')?.labels;
      assert.equal(info?.subject, 'CN=leaf.test');
      assert.equal(info?.issuer, 'CN=pm inter,O=pm\\, inter');
      assert.equal(info?.subjectalternative, '*.example.test,host.test');
      assert.match(info?.fingerprint_sha256 ?? '', /^[0-9a-f]{64}$/);
      // Go's TLS 1.3 preference, not OpenSSL's (TLS_AES_256_GCM_SHA384 first): the suite a Go client gets here.
      assert.deepEqual(gauge(gauges, 'probe_tls_cipher_info')?.labels, { cipher: 'TLS_AES_128_GCM_SHA256' });
      assert.deepEqual(gauge(gauges, 'probe_tls_version_info')?.labels, { version: 'TLS 1.3' });
    }
    assert.equal(tls.leaves.size, 1);
  });

  it('a root from the CA file that expires first is the earliest expiry', async () => {
    const port = await serve('leaf2', ['leaf2', 'inter-soon']);
    const tls = prepareTls({ ca_file: join(dir, 'root-soon.crt') });
    const { gauges, bad } = await probe(port, tls, '127.0.0.1');
    assert.equal(bad, undefined);
    assert.equal(gauge(gauges, 'probe_ssl_earliest_cert_expiry')?.value, expiry('root-soon'));
  });

  it('untrusted chain: tls_untrusted, gauges still from the sent chain', async () => {
    const port = await serve('leaf', ['leaf', 'inter']);
    const tls = prepareTls({ ca_file: join(dir, 'root-soon.crt') });
    const { gauges, bad } = await probe(port, tls, 'host.test');
    assert.equal(bad?.code, FailureCodes.TLS_UNTRUSTED, bad?.message);
    assert.equal(gauge(gauges, 'probe_ssl_earliest_cert_expiry')?.value, expiry('inter'));
  });

  it('host names like Go: one-label wildcards, IP SANs for IPs, no common-name fallback', async () => {
    const port = await serve('leaf', ['leaf', 'inter']);
    const cnPort = await serve('cn-only', ['cn-only', 'inter']);
    const tls = prepareTls({ ca_file: join(dir, 'root.crt') });
    for (const ok of ['a.example.test', 'host.test', '127.0.0.1']) assert.equal((await probe(port, tls, ok)).bad, undefined, ok);
    for (const no of ['example.test', 'a.b.example.test', 'other.test', '127.0.0.2']) {
      const { bad } = await probe(port, tls, no);
      assert.equal(bad?.code, FailureCodes.TLS_CERT_HOSTNAME, no);
      assert.match(bad?.message ?? '', new RegExp(`does not match ${no.replace(/\./g, '\\.')}: .*altnames: DNS:\\*\\.example\\.test`));
    }
    assert.equal((await probe(cnPort, tls, 'cn.test')).bad?.code, FailureCodes.TLS_CERT_HOSTNAME);
    // server_name replaces the target host in SNI and in the check.
    const named = prepareTls({ ca_file: join(dir, 'root.crt'), server_name: 'x.example.test' });
    assert.equal((await probe(port, named, '127.0.0.2')).bad, undefined);
  });
});
