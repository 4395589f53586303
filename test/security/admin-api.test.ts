/**
 * The AdminService as an operator meets it, on a real coordinator with TLS 1.3, client
 * certificates and roles, over a real nats-server: certificate checks, roles, audit
 * lines, 30+ malformed inputs (each INVALID_ARGUMENT naming its field, nothing
 * changed), bulk import with progress, selectors and pagination, module listing, the
 * result watch, reflection and health, and no secret in any log line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createLogger, loadConfig } from '@probemesh/common';
import { AdminClient, coordinatorConfigSchema, createAdminClient, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, RunningProber, startProber } from '@probemesh/prober';
import { refusedUrl, removeDir, startHttpTargets, startNats, tempDir, waitFor } from '../harness';

const CLI = join(__dirname, '..', '..', '..', 'services', 'cli', 'bin', 'probemesh.js');
const NATS_SECRET = 'nats-secret-do-not-log-7d1f';

function pki(dir: string): void {
  const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'otherca']) ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
  const issue = (name: string, ca: string, san: string) => {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  issue('server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  for (const u of ['alice-admin', 'oscar-operator', 'vera-viewer']) issue(u, 'ca', `DNS:${u}`);
  issue('mallory', 'otherca', 'DNS:alice-admin');
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, PROBEMESH_ADDR: '', PROBEMESH_CA_FILE: '', PROBEMESH_CERT_FILE: '', PROBEMESH_KEY_FILE: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('AdminService security and operations on a real coordinator', () => {
  let dir: string;
  let nats: Awaited<ReturnType<typeof startNats>>;
  let targets: Awaited<ReturnType<typeof startHttpTargets>>;
  let coordinator: RunningCoordinator;
  let prober: RunningProber;
  let admin: AdminClient;
  const logLines: string[] = [];
  const tlsFor = (who: string) => ({ ca_file: join(dir, 'ca.pem'), cert_file: join(dir, `${who}.pem`), key_file: join(dir, `${who}-key.pem`) });
  const as = (who: string) => ['--addr', coordinator.grpcAddress, '--ca', join(dir, 'ca.pem'), '--cert', join(dir, `${who}.pem`), '--key', join(dir, `${who}-key.pem`)];

  before(async () => {
    dir = await tempDir('pm-admin-');
    pki(dir);
    writeFileSync(join(dir, 'nats-pass'), NATS_SECRET);
    [nats, targets] = await Promise.all([startNats({ extraArgs: ['--user', 'coord', '--pass', NATS_SECRET] }), startHttpTargets()]);
    const natsUrl = nats.url;
    const log = createLogger('coordinator', 'c-sec', 'info', { write: (l: string) => void logLines.push(l) });
    const cfg = loadConfig(coordinatorConfigSchema, {
      text: [
        `id: c-sec`,
        `nats:\n  servers: ["${natsUrl}"]\n  user: coord\n  password_file: ${join(dir, 'nats-pass')}`,
        `grpc:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: ${dir}/server.pem\n    key_file: ${dir}/server-key.pem\n    client_ca_file: ${dir}/ca.pem`,
        `  auth:\n    admins: [alice-admin]\n    operators: [oscar-operator]\n    viewers: [vera-viewer]`,
        `http:\n  listen: 127.0.0.1:0`,
        `rebalance_delay: 50ms`,
        `canary:\n  prometheus_url: ${await refusedUrl()}`,
        '',
      ].join('\n'),
      env: {},
    });
    coordinator = await startCoordinator(cfg, { log });
    prober = await startProber(loadConfig(proberConfigSchema, { text: `id: p-sec\nzone: a\nnats:\n  servers: ["${natsUrl}"]\n  user: coord\n  password: ${NATS_SECRET}\nhttp:\n  listen: 127.0.0.1:0\nheartbeat_interval: 200ms\npublish:\n  max_delay: 50ms\nebpf:\n  enabled: false\n`, env: {} }), { log: createLogger('prober', 'p-sec', 'info', { write: (l: string) => void logLines.push(l) }) });
    admin = createAdminClient(coordinator.grpcAddress, tlsFor('alice-admin'));
    await waitFor(async () => ((await admin.listProbers({})).probers ?? []).some((p) => p.state === 'alive'), { timeoutMs: 15_000, intervalMs: 100, what: 'the prober alive' });
  });

  after(async () => {
    admin?.close();
    await prober?.stop();
    await coordinator?.stop();
    await Promise.allSettled([nats?.stop(), targets?.close()]);
    if (dir) await removeDir(dir);
  });

  test('no client certificate, or one from another CA, is refused; TLS without a CA flag is refused', async () => {
    const noCert = await cli(['targets', 'list', '--addr', coordinator.grpcAddress, '--ca', join(dir, 'ca.pem')]);
    assert.equal(noCert.code, 1);
    assert.match(noCert.stderr, /PM_GRPC_UNAVAILABLE/);
    const foreign = await cli(['targets', 'list', ...as('mallory')]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /PM_GRPC_UNAVAILABLE/);
    const plain = await cli(['targets', 'list', '--addr', coordinator.grpcAddress]);
    assert.equal(plain.code, 1, 'a plaintext client cannot talk to the TLS server');
  });

  test('roles: viewer reads but cannot add; operator adds but cannot change canary thresholds', async () => {
    const list = await cli(['targets', 'list', ...as('vera-viewer')]);
    assert.equal(list.code, 0, list.stderr);
    const add = await cli(['targets', 'add', `${targets.baseUrl}/ok`, ...as('vera-viewer')]);
    assert.equal(add.code, 1);
    assert.match(add.stderr, /^probemesh: addTarget needs the operator role; vera-viewer has viewer \[PM_GRPC_PERMISSION_DENIED\]$/m);
    const opAdd = await cli(['targets', 'add', `${targets.baseUrl}/ok?role=op`, '--interval', '1s', ...as('oscar-operator')]);
    assert.equal(opAdd.code, 0, opAdd.stderr);
    const canary = await cli(['canary', 'analyze', '--baseline', '{release="stable"}', '--canary', '{release="canary"}', '--window', '1m', ...as('oscar-operator')]);
    assert.doesNotMatch(canary.stderr, /PERMISSION_DENIED/, 'operator may run the judge with the stored config');
    const op = createAdminClient(coordinator.grpcAddress, tlsFor('oscar-operator'));
    try {
      await assert.rejects(op.analyzeCanary({ baselineSelector: '{release="stable"}', canarySelector: '{release="canary"}', windowSeconds: 60, configJson: '{"thresholds":{"pass":0.5,"marginal":0.9}}' }), (e: { code?: number; details?: string }) => e.code === grpc.status.PERMISSION_DENIED && /admin role/.test(e.details ?? ''));
    } finally {
      op.close();
    }
  });

  test('every mutating call leaves one audit line with the caller identity and outcome', async () => {
    await admin.addTarget({ url: `${targets.baseUrl}/ok?audit=1`, intervalMs: 1000 });
    await admin.removeTarget({ url: `${targets.baseUrl}/ok?audit=1` });
    const audits = logLines.map((l) => JSON.parse(l) as { audit?: boolean; rpc?: string; method?: string; identity?: string; outcome?: string; allowed?: boolean }).filter((l) => l.audit);
    assert.ok(audits.some((a) => a.rpc === 'AddTarget' && a.identity === 'alice-admin' && a.outcome === 'ok'));
    assert.ok(audits.some((a) => a.rpc === 'RemoveTarget' && a.identity === 'alice-admin' && a.outcome === 'ok'));
    assert.ok(audits.some((a) => a.rpc === 'AddTarget' && a.identity === 'oscar-operator'));
    assert.ok(audits.some((a) => a.method === 'addTarget' && a.identity === 'vera-viewer' && a.allowed === false), 'denials are audited');
    assert.equal(audits.filter((a) => a.rpc === 'ListTargets').length, 0, 'reads are not audited');
  });

  test('at least 30 malformed inputs: each INVALID_ARGUMENT naming its field, nothing changed', async () => {
    const before = (await admin.listTargets({})).targets!.map((t) => `${t.id}:${t.updatedUnixNano}`).sort();
    const ok = `${targets.baseUrl}/ok`;
    const long = 'x'.repeat(1025);
    const cases: [string, () => Promise<unknown>][] = [
      ['url', () => admin.addTarget({})],
      ['url', () => admin.addTarget({ url: 'ftp://x/' })],
      ['url', () => admin.addTarget({ url: 'not a url' })],
      ['url', () => admin.addTarget({ url: 'https://' })],
      ['url', () => admin.addTarget({ url: `http://x/${'a'.repeat(2100)}` })],
      ['url', () => admin.addTarget({ url: 'http://x/\u0000' })],
      ['module', () => admin.addTarget({ url: ok, module: 'bad module!' })],
      ['module', () => admin.addTarget({ url: ok, module: 'm'.repeat(129) })],
      ['interval_ms', () => admin.addTarget({ url: ok, intervalMs: 50 })],
      ['interval_ms', () => admin.addTarget({ url: ok, intervalMs: 3_600_001 })],
      ['timeout_ms', () => admin.addTarget({ url: ok, intervalMs: 1000, timeoutMs: 1000 })],
      ['timeout_ms', () => admin.addTarget({ url: ok, intervalMs: 1000, timeoutMs: 5000 })],
      ['replication', () => admin.addTarget({ url: ok, replication: 11 })],
      ['labels.1bad', () => admin.addTarget({ url: ok, labels: { '1bad': 'x' } })],
      ['labels.__meta', () => admin.addTarget({ url: ok, labels: { __meta: 'x' } })],
      ['labels.instance', () => admin.addTarget({ url: ok, labels: { instance: 'x' } })],
      ['labels.zone', () => admin.addTarget({ url: ok, labels: { zone: 'x' } })],
      ['labels.team', () => admin.addTarget({ url: ok, labels: { team: long } })],
      ['labels', () => admin.addTarget({ url: ok, labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])) })],
      ['labels.a-b', () => admin.addTarget({ url: ok, labels: { 'a-b': 'x' } })],
      ['id', () => admin.removeTarget({})],
      ['module', () => admin.removeTarget({ url: ok, module: 'bad module' })],
      ['selector', () => admin.listTargets({ selector: 'team=' + '"unterminated' })],
      ['selector', () => admin.listTargets({ selector: 'team=~"("' })],
      ['selector', () => admin.listTargets({ selector: '!!!' })],
      ['page_size', () => admin.listTargets({ pageSize: 10_001 })],
      ['page_token', () => admin.listTargets({ pageSize: 1, pageToken: 'garbage' })],
      ['format', () => admin.importTargets({ format: 'yaml', content: 'x' })],
      ['content', () => admin.importTargets({ format: 'list', content: '' })],
      ['content', () => admin.importTargets({ format: 'file_sd', content: '{not json' })],
      ['content[0].targets', () => admin.importTargets({ format: 'file_sd', content: '[{"targets": "x"}]' })],
      ['content[0].lables', () => admin.importTargets({ format: 'file_sd', content: `[{"targets": ["${ok}"], "lables": {}}]` })],
      ['content[1].targets[0]', () => admin.importTargets({ format: 'file_sd', content: `[{"targets": ["${ok}?i=1"]}, {"targets": ["ftp://bad/"]}]` })],
      ['content line 3', () => admin.importTargets({ format: 'list', content: `${ok}?a=1\n# comment\nftp://bad/\n` })],
      ['prober', () => admin.drainProber({})],
      ['target_id', () => new Promise<void>((resolve, reject) => admin.watchResults({ targetId: 'xyz' }, () => undefined, (e) => (e ? reject(e) : resolve())))],
    ];
    assert.ok(cases.length >= 30, `${cases.length} cases`);
    for (const [field, call] of cases) {
      await assert.rejects(call(), (e: { code?: number; details?: string }) => {
        assert.equal(e.code, grpc.status.INVALID_ARGUMENT, `${field}: ${e.details}`);
        const named = (e.details ?? '').startsWith(`${field}:`) || (e.details ?? '').startsWith(`${field}.`);
        assert.ok(named, `error names ${field}: ${e.details}`);
        return true;
      }, `${field} should be rejected`);
    }
    const after = (await admin.listTargets({})).targets!.map((t) => `${t.id}:${t.updatedUnixNano}`).sort();
    assert.deepEqual(after, before, 'the target set is unchanged');
  });

  test('bulk import from file_sd with progress: idempotent, dry run, selectors and pagination', async () => {
    const groups = [
      { targets: Array.from({ length: 700 }, (_, i) => `${targets.baseUrl}/ok?bulk=${i}`), labels: { team: 'payments', env: 'prod' } },
      { targets: Array.from({ length: 500 }, (_, i) => `${targets.baseUrl}/ok?bulk2=${i}`), labels: { team: 'search', __param_module: 'http_2xx' } },
    ];
    const file = join(dir, 'targets.json');
    writeFileSync(file, JSON.stringify(groups));
    const dry = await cli(['targets', 'import', file, '--interval', '60s', '--dry-run', ...as('oscar-operator')]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would import .*: 1200 added, 0 updated, 0 unchanged/);
    assert.equal((await admin.listTargets({ selector: 'team="payments"' })).total, 0, 'a dry run changes nothing');
    const imp = await cli(['targets', 'import', file, '--interval', '60s', ...as('oscar-operator')]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /imported .*: 1200 added, 0 updated, 0 unchanged/);
    const again = await cli(['targets', 'import', file, '--interval', '60s', '--json', ...as('oscar-operator')]);
    assert.deepEqual(JSON.parse(again.stdout), { dry_run: false, added: 0, updated: 0, unchanged: 1200 }, 'importing again is an idempotent upsert');

    const payments = await admin.listTargets({ selector: 'team="payments",env!="dev"' });
    assert.equal(payments.total, 700);
    assert.equal((await admin.listTargets({ selector: 'team=~"pay.*|search"' })).total, 1200);
    const seen = new Set<string>();
    let token = '';
    let pages = 0;
    do {
      const page = await admin.listTargets({ selector: 'team="search"', pageSize: 128, pageToken: token });
      for (const t of page.targets ?? []) seen.add(t.id ?? '');
      token = page.nextPageToken ?? '';
      pages++;
    } while (token);
    assert.equal(seen.size, 500, 'pagination visits every target once');
    assert.equal(pages, 4);
    const listed = await cli(['targets', 'list', '--selector', 'team="search"', '--page-size', '100', '--json', ...as('vera-viewer')]);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 500);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ targets: [`${targets.baseUrl}/ok?new=1`] }, { targets: ['ftp://nope/'] }]));
    const rejected = await cli(['targets', 'import', bad, ...as('oscar-operator')]);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /content\[1\]\.targets\[0\]: scheme must be http or https/);
    await assert.rejects(admin.getTarget({ url: `${targets.baseUrl}/ok?new=1` }), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND, 'nothing of a bad import is applied');
    const removed = await Promise.all((await admin.listTargets({ selector: 'team=~"payments|search"' })).targets!.map((t) => admin.removeTarget({ id: t.id })));
    assert.equal(removed.length, 1200);
  });

  test('update, get, modules and the result watch', async () => {
    const url = `${targets.baseUrl}/ok?watch=1`;
    await admin.addTarget({ url, intervalMs: 200, timeoutMs: 150, labels: { team: 'a' } });
    const updated = await admin.updateTarget({ url, labels: { tier: 'gold' }, removeLabels: ['team'] });
    assert.deepEqual({ ...updated.labels }, { tier: 'gold' });
    assert.equal(updated.intervalMs, 200);
    const got = await cli(['targets', 'get', url, '--json', ...as('vera-viewer')]);
    assert.equal(JSON.parse(got.stdout).labels.tier, 'gold');

    const modules = await waitFor(async () => {
      const m = await admin.listModules({});
      return (m.modules ?? []).some((x) => x.name === 'http_2xx' && (x.probers ?? []).includes('p-sec')) ? m : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200, what: 'http_2xx listed for p-sec' });
    const http2xx = modules.modules!.find((m) => m.name === 'http_2xx')!;
    assert.equal(http2xx.prober, 'http');
    assert.equal(JSON.parse(http2xx.configJson ?? '{}').prober, 'http');

    const watched = await cli(['watch', '--target', url, '--count', '3', '--json', ...as('vera-viewer')]);
    assert.equal(watched.code, 0, watched.stderr);
    const results = watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as { target: string; success: boolean; prober: string });
    assert.equal(results.length, 3);
    assert.ok(results.every((r) => r.target === url && r.success && r.prober === 'p-sec'));
  });

  test('reflection lists the AdminService and the health check answers, over mTLS', async () => {
    const reflectionProto = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1alpha', 'reflection.proto');
    const healthProto = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
    const pkgs = grpc.loadPackageDefinition(loadSync([reflectionProto, healthProto], { keepCase: true, enums: String })) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const creds = grpc.credentials.createSsl(readFileSync(join(dir, 'ca.pem')), readFileSync(join(dir, 'vera-viewer-key.pem')), readFileSync(join(dir, 'vera-viewer.pem')));
    const health = new pkgs.grpc.health.v1.Health(coordinator.grpcAddress, creds);
    const status = await new Promise<string>((res, rej) => health.Check({ service: 'probemesh.v1.AdminService' }, (e: Error | null, r: { status: string }) => (e ? rej(e) : res(r.status))));
    assert.equal(status, 'SERVING');
    health.close();
    const refl = new pkgs.grpc.reflection.v1alpha.ServerReflection(coordinator.grpcAddress, creds);
    const services = await new Promise<string[]>((res, rej) => {
      const call = refl.ServerReflectionInfo();
      call.on('data', (d: { list_services_response: { service: { name: string }[] } }) => {
        res(d.list_services_response.service.map((s) => s.name));
        call.end();
      });
      call.on('error', rej);
      call.write({ list_services: '' });
    });
    refl.close();
    assert.ok(services.includes('probemesh.v1.AdminService'));
    assert.ok(services.includes('grpc.health.v1.Health'));
  });

  test('secrets never appear in any log line', () => {
    assert.ok(logLines.length > 10);
    for (const l of logLines) assert.ok(!l.includes(NATS_SECRET), `secret in log line: ${l.slice(0, 200)}`);
  });
});
