import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '@probemesh/common';
import { AdminServiceDefinition } from '@probemesh/proto';
import { RoleMap, secureHandlers, serverCredentials } from './grpc-auth';

function pki(dir: string): void {
  const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'otherca']) ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
  const issue = (name: string, ca: string, san: string) => {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  issue('server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  for (const u of ['alice-admin', 'oscar-operator', 'vera-viewer', 'nobody']) issue(u, 'ca', `DNS:${u}`);
  issue('mallory', 'otherca', 'DNS:alice-admin');
}

describe('AdminService mTLS, TLS 1.3 and roles', () => {
  let dir: string;
  let server: grpc.Server;
  let port: number;
  const auditLines: { method?: string; identity?: string; allowed?: boolean; msg?: string }[] = [];
  const Client = grpc.makeGenericClientConstructor(AdminServiceDefinition, 'AdminService');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pm-grpcauth-'));
    pki(dir);
    const ok = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {});
    const handlers = Object.fromEntries(Object.keys(AdminServiceDefinition).map((m) => [m, ok]));
    const audit = createLogger('coordinator', 'test', 'info', { write: (s: string) => void auditLines.push(JSON.parse(s)) });
    const roles = new RoleMap({ admins: ['alice-admin'], operators: ['oscar-operator'], viewers: ['vera-viewer'], default_role: 'none', insecure_role: 'admin' }, true);
    server = new grpc.Server();
    server.addService(AdminServiceDefinition, secureHandlers(handlers as grpc.UntypedServiceImplementation, roles, audit));
    port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', serverCredentials({ cert_file: join(dir, 'server.pem'), key_file: join(dir, 'server-key.pem'), client_ca_file: join(dir, 'ca.pem') }), (e, p) => (e ? rej(e) : res(p))));
  });
  after(() => {
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const clientFor = (who: string | undefined, opts: { ca?: string; maxVersion?: 'TLSv1.2' } = {}) => {
    const ca = readFileSync(join(dir, opts.ca ?? 'ca.pem'));
    const key = who ? readFileSync(join(dir, `${who}-key.pem`)) : undefined;
    const cert = who ? readFileSync(join(dir, `${who}.pem`)) : undefined;
    const creds = opts.maxVersion ? grpc.credentials.createFromSecureContext(createSecureContext({ ca, key, cert, maxVersion: opts.maxVersion })) : grpc.credentials.createSsl(ca, key ?? null, cert ?? null);
    return new Client(`127.0.0.1:${port}`, creds);
  };
  const call = (c: grpc.Client, method: string, req: object) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      (c as unknown as Record<string, (r: object, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void>)[method]!(req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => resolve(e));
    });

  test('no client certificate and a certificate from another CA are refused', async () => {
    for (const c of [clientFor(undefined), clientFor('mallory')]) {
      const err = await call(c, 'listTargets', {});
      assert.equal(err?.code, grpc.status.UNAVAILABLE, `refused at the TLS handshake: ${err?.details}`);
      c.close();
    }
  });

  test('TLS 1.2 clients are refused', async () => {
    const c = clientFor('alice-admin', { maxVersion: 'TLSv1.2' });
    assert.equal((await call(c, 'listTargets', {}))?.code, grpc.status.UNAVAILABLE);
    c.close();
  });

  test('viewer reads but cannot add targets; operator adds but cannot change canary thresholds; admin can', async () => {
    const viewer = clientFor('vera-viewer');
    const operator = clientFor('oscar-operator');
    const admin = clientFor('alice-admin');
    const stranger = clientFor('nobody');
    try {
      assert.equal(await call(viewer, 'listTargets', {}), null);
      const denied = await call(viewer, 'addTarget', { url: 'http://x/' });
      assert.equal(denied?.code, grpc.status.PERMISSION_DENIED);
      assert.match(denied!.details, /addTarget needs the operator role; vera-viewer has viewer/);
      assert.equal(await call(operator, 'addTarget', { url: 'http://x/' }), null);
      assert.equal(await call(operator, 'drainProber', { prober: 'p1' }), null);
      assert.equal(await call(operator, 'analyzeCanary', { baselineSelector: '{a="b"}' }), null, 'operator runs the canary with the stored config');
      const thresholds = await call(operator, 'analyzeCanary', { baselineSelector: '{a="b"}', configJson: '{"thresholds":{"pass":0.5,"marginal":0.9}}' });
      assert.equal(thresholds?.code, grpc.status.PERMISSION_DENIED, 'operator cannot change canary thresholds');
      assert.equal(await call(admin, 'analyzeCanary', { configJson: '{"thresholds":{"pass":0.5,"marginal":0.9}}' }), null);
      assert.equal((await call(stranger, 'listTargets', {}))?.code, grpc.status.PERMISSION_DENIED, 'a valid certificate listed nowhere has no role');
    } finally {
      for (const c of [viewer, operator, admin, stranger]) c.close();
    }
  });

  test('every denial is audited with the caller identity', () => {
    assert.ok(auditLines.some((l) => l.method === 'addTarget' && l.identity === 'vera-viewer' && l.allowed === false));
    assert.ok(auditLines.some((l) => l.method === 'analyzeCanary' && l.identity === 'oscar-operator' && l.allowed === false));
    assert.ok(!auditLines.some((l) => l.allowed !== false), 'allowed calls are audited by the handlers themselves (with their outcome)');
  });
});
