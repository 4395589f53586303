/**
 * NATS security as documented: nats-server runs with docs/nats-server.conf itself
 * (mTLS + one user per role). A prober works under its own credentials, and those
 * credentials cannot rewrite assignments or targets, publish as another prober, or read
 * another prober's assignment. Connections without a client certificate or with a
 * wrong password are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, NatsConnection } from 'nats';
import { KV_ASSIGNMENTS, KV_TARGETS, loadConfig, silentLogger } from '@probemesh/common';
import { coordinatorConfigSchema, createAdminClient, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, RunningProber, startProber } from '@probemesh/prober';
import { freePort, removeDir, startNats, tempDir, waitFor } from '../harness';

const ROOT = join(__dirname, '..', '..', '..');
const PASSWORDS = { PM_COORDINATOR_PASSWORD: 'coord-secret', PM_AGGREGATOR_PASSWORD: 'agg-secret', PM_PROBER_A_PASSWORD: 'a-secret', PM_PROBER_B_PASSWORD: 'b-secret' };

function makePki(dir: string): void {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=probemesh test CA');
  for (const [name, san] of [['server', 'DNS:localhost,IP:127.0.0.1'], ['client', 'DNS:prober-a']] as const) {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
}

describe('NATS roles from docs/nats-server.conf (mTLS, per-prober users)', () => {
  let dir: string;
  let nats: Awaited<ReturnType<typeof startNats>>;
  let url: string;
  let coordinator: RunningCoordinator;
  let prober: RunningProber;
  let rogue: NatsConnection;

  const tls = () => ({ ca_file: join(dir, 'ca.pem'), cert_file: join(dir, 'client.pem'), key_file: join(dir, 'client-key.pem') });
  const natsYaml = (user: string, password: string) =>
    `nats:\n  servers: ["${url}"]\n  user: ${user}\n  password: ${password}\n  tls:\n    ca_file: ${tls().ca_file}\n    cert_file: ${tls().cert_file}\n    key_file: ${tls().key_file}\n`;

  before(async () => {
    dir = await tempDir('pm-natssec-');
    makePki(dir);
    const port = await freePort();
    const conf = readFileSync(join(ROOT, 'docs', 'nats-server.conf'), 'utf8')
      .replace(/^listen: .*$/m, `listen: 127.0.0.1:${port}`)
      .replace(/jetstream \{[^}]*\}/, '') // the harness passes -js and -sd
      .replace('/etc/nats/tls/server.pem', join(dir, 'server.pem'))
      .replace('/etc/nats/tls/server-key.pem', join(dir, 'server-key.pem'))
      .replace('/etc/nats/tls/ca.pem', join(dir, 'ca.pem'));
    const confFile = join(dir, 'nats.conf');
    writeFileSync(confFile, conf);
    Object.assign(process.env, PASSWORDS);
    nats = await startNats({ extraArgs: ['-c', confFile] });
    url = `tls://127.0.0.1:${nats.port}`;
    coordinator = await startCoordinator(loadConfig(coordinatorConfigSchema, { text: `${natsYaml('coordinator', PASSWORDS.PM_COORDINATOR_PASSWORD)}grpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\nrebalance_delay: 50ms\n`, env: {} }), { log: silentLogger() });
    prober = await startProber(loadConfig(proberConfigSchema, { text: `id: prober-a\nzone: a\n${natsYaml('prober-a', PASSWORDS.PM_PROBER_A_PASSWORD)}http:\n  listen: 127.0.0.1:0\nheartbeat_interval: 250ms\nebpf:\n  enabled: false\n`, env: {} }), { log: silentLogger() });
    rogue = await connect({ servers: url, user: 'prober-a', pass: PASSWORDS.PM_PROBER_A_PASSWORD, tls: { caFile: tls().ca_file, certFile: tls().cert_file, keyFile: tls().key_file } });
  });

  after(async () => {
    await rogue?.close();
    await prober?.stop();
    await coordinator?.stop();
    await nats?.stop();
    if (dir) await removeDir(dir);
  });

  test('a prober works under its own credentials: gets its assignment, publishes results', async () => {
    const admin = createAdminClient(coordinator.grpcAddress);
    try {
      await admin.addTarget({ url: 'http://127.0.0.1:9/never', intervalMs: 200, timeoutMs: 150 });
      await waitFor(async () => {
        const p = ((await admin.listProbers({})).probers ?? []).find((x) => x.heartbeat?.prober === 'prober-a');
        return p && p.state === 'alive' && p.assignedTargets === 1 && Number(p.heartbeat?.appliedEpoch) >= 1 ? p : undefined;
      }, { timeoutMs: 15_000, intervalMs: 200, what: 'prober-a alive with its assignment applied' });
    } finally {
      admin.close();
    }
    const coordNc = await connect({ servers: url, user: 'coordinator', pass: PASSWORDS.PM_COORDINATOR_PASSWORD, tls: { caFile: tls().ca_file, certFile: tls().cert_file, keyFile: tls().key_file } });
    try {
      const published = await waitFor(async () => {
        const info = await (await coordNc.jetstreamManager()).streams.info('PM_RESULTS', { subjects_filter: 'pm.results.prober-a' });
        const n = info.state.subjects?.['pm.results.prober-a'] ?? 0;
        return n > 0 ? n : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200, what: 'result batches from prober-a in PM_RESULTS' });
      assert.ok(published > 0);
    } finally {
      await coordNc.close();
    }
    const jsm = await rogue.jetstreamManager({ timeout: 1500 });
    await assert.rejects(jsm.streams.delete('PM_RESULTS'), 'a prober cannot delete the results stream');
    await assert.rejects(jsm.streams.purge('PM_RESULTS'), 'a prober cannot purge the results stream');
  });

  test('prober credentials cannot write assignments or targets, nor act as another prober', async () => {
    const coordNc = await connect({ servers: url, user: 'coordinator', pass: PASSWORDS.PM_COORDINATOR_PASSWORD, tls: { caFile: tls().ca_file, certFile: tls().cert_file, keyFile: tls().key_file } });
    try {
      const truth = await coordNc.jetstream().views.kv(KV_ASSIGNMENTS, { bindOnly: true });
      const targetsKv = await coordNc.jetstream().views.kv(KV_TARGETS, { bindOnly: true });
      const before = await truth.get('prober-a');
      assert.ok(before, 'prober-a has an assignment');
      const targetsBefore = (await targetsKv.status()).values;

      const js = rogue.jetstream({ timeout: 1500 });
      const kv = await js.views.kv(KV_ASSIGNMENTS, { bindOnly: true });
      await assert.rejects(kv.put('prober-a', new Uint8Array([1, 2, 3])), 'cannot rewrite its own assignment');
      await assert.rejects(kv.put('prober-b', new Uint8Array([1])), 'cannot write another prober assignment');
      await assert.rejects(kv.get('prober-b'), 'cannot read another prober assignment');
      const tkv = await js.views.kv(KV_TARGETS, { bindOnly: true });
      await assert.rejects(tkv.put('0123456789abcdef0123456789abcdef', new Uint8Array([1])), 'cannot add targets');
      await assert.rejects(js.publish('pm.results.prober-b', new Uint8Array([1])), 'cannot publish as prober-b');

      const after = await truth.get('prober-a');
      assert.equal(after?.revision, before.revision, 'prober-a assignment unchanged');
      assert.equal((await targetsKv.status()).values, targetsBefore, 'targets unchanged');
    } finally {
      await coordNc.close();
    }
  });

  test('no client certificate, or a wrong password, is refused', async () => {
    await assert.rejects(connect({ servers: url, user: 'prober-a', pass: PASSWORDS.PM_PROBER_A_PASSWORD, tls: { caFile: tls().ca_file }, reconnect: false, timeout: 3000 }));
    await assert.rejects(connect({ servers: url, user: 'prober-a', pass: 'wrong', tls: { caFile: tls().ca_file, certFile: tls().cert_file, keyFile: tls().key_file }, reconnect: false, timeout: 3000 }), /AUTHORIZATION_VIOLATION|Authorization/i);
  });
});
