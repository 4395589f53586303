/**
 * remote_write over TLS with a private CA, mTLS client certificates, basic auth
 * (password file), bearer token (file), and extra headers, against a local https
 * server. Certificates are made with openssl for the test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { RemoteWriteSettings, remoteWriteSettings } from './config';
import { RemoteWriteClient } from './remote-write';
import { TimeSeries } from './series';

const OPENSSL = ['/usr/bin/openssl', '/bin/openssl'].find((p) => existsSync(p));
const dir = mkdtempSync(join(tmpdir(), 'pm-agg-tls-'));
const f = (n: string) => join(dir, n);
let server: Server;
let url = '';
const seen: { auth?: string; org?: string; clientCN?: string }[] = [];

function openssl(...args: string[]): void {
  execFileSync(OPENSSL!, args, { stdio: 'pipe' });
}

before(() => {
  if (!OPENSSL) return;
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=pm-test-ca');
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:rw.test\n');
  for (const [name, cn, ext] of [['server', 'rw.test', true], ['client', 'aggregator-1', false]] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', ...(ext ? ['-extfile', f('san.ext')] : []));
  }
  writeFileSync(f('password'), 's3cret\n');
  writeFileSync(f('token'), 'tok-123\n');
});

after(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function listen(requestCert: boolean): Promise<void> {
  server?.close();
  server = createServer({ key: readFileSync(f('server.key')), cert: readFileSync(f('server.pem')), ca: readFileSync(f('ca.pem')), requestCert, rejectUnauthorized: requestCert }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    seen.push({ auth: req.headers.authorization as string | undefined, org: req.headers['x-scope-orgid'] as string | undefined, clientCN: peer?.subject?.CN as string | undefined });
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`;
}

type Tls = RemoteWriteSettings['tls'];
const tls = (over: Partial<Tls>): Tls => ({ ca_file: undefined, cert_file: undefined, key_file: undefined, server_name: undefined, insecure_skip_verify: false, ...over });

const SERIES: TimeSeries[] = [{ labels: [{ name: '__name__', value: 'probe_success' }], samples: [{ value: 1, timestampMs: 1_700_000_000_000 }] }];

test('https with a private CA and a client certificate (mTLS), basic auth from a password file', { skip: !OPENSSL && 'needs openssl to make certificates' }, async () => {
  await listen(true);
  seen.length = 0;
  const c = new RemoteWriteClient(
    remoteWriteSettings(url, {
      name: 'central',
      tls: tls({ ca_file: f('ca.pem'), cert_file: f('client.pem'), key_file: f('client.key') }),
      basic_auth: { username: 'agg', password: undefined, password_file: f('password') },
      headers: { 'X-Scope-OrgID': 'edge' },
    }),
  );
  const out = await c.send(SERIES, { maxAttempts: 1 });
  c.close();
  assert.equal(out.ok, true, JSON.stringify(out));
  assert.equal(c.endpoint, 'central');
  assert.deepEqual(seen, [{ auth: `Basic ${Buffer.from('agg:s3cret').toString('base64')}`, org: 'edge', clientCN: 'aggregator-1' }]);

  // Without the client certificate the server refuses the handshake: a retryable network error.
  const noCert = new RemoteWriteClient(remoteWriteSettings(url, { tls: tls({ ca_file: f('ca.pem') }) }));
  const refused = await noCert.send(SERIES, { maxAttempts: 1 });
  noCert.close();
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, 'network');
});

test('server certificate checks: unknown CA fails, insecure_skip_verify passes; bearer token from a file; server_name', { skip: !OPENSSL && 'needs openssl to make certificates' }, async () => {
  await listen(false);
  seen.length = 0;
  const untrusted = new RemoteWriteClient(remoteWriteSettings(url));
  const bad = await untrusted.send(SERIES, { maxAttempts: 1 });
  untrusted.close();
  assert.equal(bad.ok, false);
  assert.match(bad.detail ?? '', /self.signed|unable to (get|verify)|UNABLE_TO|SELF_SIGNED/i);

  const skip = new RemoteWriteClient(remoteWriteSettings(url, { tls: tls({ insecure_skip_verify: true }), bearer_token_file: f('token') }));
  assert.equal((await skip.send(SERIES, { maxAttempts: 1 })).ok, true);
  skip.close();

  const named = new RemoteWriteClient(remoteWriteSettings(url, { tls: tls({ ca_file: f('ca.pem'), server_name: 'rw.test' }), bearer_token: 'inline' }));
  assert.equal((await named.send(SERIES, { maxAttempts: 1 })).ok, true);
  named.close();
  const wrongName = new RemoteWriteClient(remoteWriteSettings(url, { tls: tls({ ca_file: f('ca.pem'), server_name: 'other.test' }) }));
  const mismatch = await wrongName.send(SERIES, { maxAttempts: 1 });
  wrongName.close();
  assert.equal(mismatch.ok, false);
  assert.match(mismatch.detail ?? '', /other\.test|altnames|Hostname/i);
  assert.deepEqual(seen.map((s) => s.auth), ['Bearer tok-123', 'Bearer inline']);
});
