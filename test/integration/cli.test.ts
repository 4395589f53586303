/**
 * The probemesh CLI as a user meets it: help for every command, one-line errors with a
 * non-zero exit, and admin commands against a real coordinator on a real nats-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig, silentLogger } from '@probemesh/common';
import { coordinatorConfigSchema, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { startNats } from '../harness';

const CLI = join(__dirname, '..', '..', '..', 'services', 'cli', 'bin', 'probemesh.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('every command has --help with examples', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  const names = [...top.stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]!);
  assert.deepEqual(names, ['up', 'coordinator', 'prober', 'aggregator', 'targets', 'probers', 'drain', 'ring', 'modules', 'watch', 'probe', 'canary']);
  for (const name of names) {
    const r = await cli([name, '--help']);
    assert.equal(r.code, 0, `${name} --help exits 0`);
    assert.match(r.stdout, /^Usage:/m, `${name} --help has a usage line`);
    assert.match(r.stdout, /Example/, `${name} --help has examples`);
  }
});

test('usage errors are one line on stderr with exit status 2', async () => {
  for (const args of [['frobnicate'], ['targets'], ['targets', 'add'], ['targets', 'add', 'http://x/', '--interval', 'soon'], ['probers', '--colour']]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')} exits 2`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    assert.match(r.stderr, /^probemesh: .*\[PM_USAGE\]$/m);
  }
});

test('a service with a bad config exits 1 naming the field', async () => {
  const r = await cli(['prober'], { PROBEMESH_HEARTBEAT_INTERVAL: 'often' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /heartbeat_interval: invalid duration "often".*\(from PROBEMESH_HEARTBEAT_INTERVAL\).*\[PM_CONFIG_INVALID\]/);
});

test('an unreachable coordinator is one clear line', async () => {
  const r = await cli(['probers', '--addr', '127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the coordinator at 127\.0\.0\.1:1.*\[PM_GRPC_UNAVAILABLE\]/);
});

describe('admin commands against a real coordinator', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let coordinator: RunningCoordinator;
  before(async () => {
    nats = await startNats();
    const cfg = loadConfig(coordinatorConfigSchema, { text: `nats:\n  servers: ["${nats.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n`, env: {} });
    coordinator = await startCoordinator(cfg, { log: silentLogger() });
  });
  after(async () => {
    await coordinator?.stop();
    await nats?.stop();
  });

  test('targets add / list / rm, tables and --json', async () => {
    const addr = ['--addr', coordinator.grpcAddress];
    const add = await cli(['targets', 'add', 'https://api.example.com/health', '--interval', '10s', '--label', 'team=payments', ...addr]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^added https:\/\/api\.example\.com\/health \(module http_2xx, every 10s, id [0-9a-f]{32}\)$/m);
    const again = await cli(['targets', 'add', 'https://api.example.com/health', '--interval', '20s', ...addr]);
    assert.match(again.stdout, /^updated /m, 'adding the same URL again is an upsert');
    const table = await cli(['targets', 'list', ...addr]);
    assert.match(table.stdout, /^URL\s+MODULE\s+INTERVAL/m);
    assert.match(table.stdout, /https:\/\/api\.example\.com\/health\s+http_2xx\s+20s/);
    const json = JSON.parse((await cli(['targets', 'list', '--json', ...addr])).stdout) as { url: string; interval_ms: number }[];
    assert.deepEqual(json.map((t) => [t.url, t.interval_ms]), [['https://api.example.com/health', 20000]]);
    const bad = await cli(['targets', 'add', 'ftp://files.example.com/', ...addr]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^probemesh: url: .*\[PM_GRPC_INVALID_ARGUMENT\]$/m);
    const rm = await cli(['targets', 'rm', 'https://api.example.com/health', ...addr]);
    assert.equal(rm.code, 0, rm.stderr);
    const empty = JSON.parse((await cli(['targets', 'list', '--json', ...addr])).stdout) as unknown[];
    assert.equal(empty.length, 0);
    const missing = await cli(['targets', 'rm', 'https://api.example.com/health', ...addr]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\[PM_GRPC_NOT_FOUND\]/);
  });

  test('probers lists an empty mesh', async () => {
    const r = await cli(['probers', '--json', '--addr', coordinator.grpcAddress]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { probers: unknown[]; epoch: number };
    assert.deepEqual(body.probers, []);
  });
});

test('docs/CONFIG.md is generated from the current schemas', async () => {
  const r = await new Promise<number | null>((resolve) => spawn(process.execPath, [join(__dirname, '..', '..', '..', 'scripts', 'gen-config-doc.mjs'), '--check'], { stdio: 'inherit' }).once('exit', resolve));
  assert.equal(r, 0, 'run node scripts/gen-config-doc.mjs');
});
