import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { Registry } from 'prom-client';
import { ConfigError } from './errors';
import { loadConfig } from './config';
import { httpSchema, serveHttp, HttpEndpoint } from './http';
import { silentLogger } from './log';

function pki(dir: string): void {
  const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test CA');
  for (const [n, san] of [['server', 'IP:127.0.0.1'], ['client', 'DNS:scraper']]) {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${n}-key.pem`, '-out', `${n}.csr`, '-subj', `/CN=${n}`);
    writeFileSync(join(dir, `${n}.ext`), `subjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${n}.pem`, '-days', '2', '-extfile', `${n}.ext`);
  }
}

function get(url: string, opts: { auth?: string; client?: boolean; dir: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ca: readFileSync(join(opts.dir, 'ca.pem')),
      cert: opts.client ? readFileSync(join(opts.dir, 'client.pem')) : undefined,
      key: opts.client ? readFileSync(join(opts.dir, 'client-key.pem')) : undefined,
      headers: opts.auth ? { authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` } : {},
    }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('HTTP endpoints with TLS, client certificates and basic auth (web config)', () => {
  let dir: string;
  let ep: HttpEndpoint;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pm-http-'));
    pki(dir);
    const hash = bcrypt.hashSync('s3cret', 4);
    const yaml = `http:\n  listen: 127.0.0.1:0\n  tls_server_config:\n    cert_file: ${dir}/server.pem\n    key_file: ${dir}/server-key.pem\n    client_ca_file: ${dir}/ca.pem\n    client_auth_type: RequireAndVerifyClientCert\n  basic_auth_users:\n    prometheus: "${hash}"\n`;
    const { obj } = await import('./schema');
    const cfg = loadConfig(obj({ http: httpSchema('0.0.0.0:9115') }), { text: yaml, env: {} });
    const registry = new Registry();
    registry.setDefaultLabels({});
    ep = await serveHttp(cfg.http, registry, silentLogger());
  });
  after(async () => {
    await ep?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves https and requires a client certificate and the password', async () => {
    assert.match(ep.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await get(`${ep.url}/-/healthy`, { dir, client: true, auth: 'prometheus:s3cret' });
    assert.deepEqual(ok, { status: 200, body: 'OK\n' });
    assert.equal((await get(`${ep.url}/metrics`, { dir, client: true, auth: 'prometheus:wrong' })).status, 401);
    assert.equal((await get(`${ep.url}/metrics`, { dir, client: true })).status, 401);
    assert.equal((await get(`${ep.url}/metrics`, { dir, client: true, auth: 'nobody:s3cret' })).status, 401);
    await assert.rejects(get(`${ep.url}/metrics`, { dir, client: false, auth: 'prometheus:s3cret' }), 'no client certificate: handshake refused');
  });

  test('bad web config is rejected naming the field', () => {
    const { obj } = require('./schema') as typeof import('./schema');
    const s = obj({ http: httpSchema('0.0.0.0:9115') });
    assert.throws(() => loadConfig(s, { text: 'http:\n  basic_auth_users:\n    alice: plaintext\n', env: {} }), (e: unknown) => e instanceof ConfigError && e.issues[0]!.path === 'http.basic_auth_users.alice');
    assert.throws(() => loadConfig(s, { text: 'http:\n  tls_server_config:\n    cert_file: a\n    key_file: b\n    client_auth_type: RequireAndVerifyClientCert\n', env: {} }), (e: unknown) => e instanceof ConfigError && e.issues[0]!.path === 'http.tls_server_config.client_ca_file');
  });
});
