import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ErrorCodes, ProbemeshError } from './errors';
import { loadConfig, describeSchema } from './config';
import { bool, duration, list, listenAddress, num, obj, optional, record, str, url } from './schema';
import { natsSchema } from './nats';

const schema = obj({
  id: str({ default: 'node-1' }),
  nats: natsSchema,
  listen: listenAddress({ default: '0.0.0.0:9115' }),
  interval: duration({ default: '15s' }),
  debug: bool({ default: false }),
  workers: num({ int: true, min: 1, default: 4 }),
  remote_write: list(obj({ url: url({ schemes: ['http', 'https'] }), headers: record(str(), { default: {} }) }), { default: [] }),
  token: optional(str()),
});

function issuesOf(fn: () => unknown): { path: string; message: string; env?: string }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.code, ErrorCodes.CONFIG_INVALID);
    return [...err.issues];
  }
  assert.fail('expected a ConfigError');
}

test('defaults apply when the file is empty', () => {
  const c = loadConfig(schema, { text: '', env: {} });
  assert.equal(c.id, 'node-1');
  assert.deepEqual(c.nats.servers, ['nats://127.0.0.1:4222']);
  assert.equal(c.interval, 15_000);
  assert.equal(c.workers, 4);
  assert.deepEqual(c.remote_write, []);
  assert.equal(c.token, undefined);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.nats), 'config is frozen');
});

test('an unknown key is rejected with its full path', () => {
  const issues = issuesOf(() => loadConfig(schema, { text: 'nats:\n  servers: [nats://x:1]\n  sevrers: oops\n', env: {} }));
  assert.equal(issues.length, 1);
  assert.equal(issues[0]!.path, 'nats.sevrers');
  assert.match(issues[0]!.message, /unknown key/);
  assert.match(issues[0]!.message, /servers/, 'the message lists the allowed keys');
});

test('a wrong type names the field and what was expected', () => {
  const issues = issuesOf(() => loadConfig(schema, { text: 'workers: "four"\ndebug: yes-please\n', env: {} }));
  assert.deepEqual(issues.map((i) => i.path), ['debug', 'workers']);
  assert.match(issues.find((i) => i.path === 'workers')!.message, /expected an integer, got string "four"/);
});

test('a bad URL inside a list names the element', () => {
  const issues = issuesOf(() => loadConfig(schema, { text: 'remote_write:\n  - url: http://ok:9090/api/v1/write\n  - url: "ftp://prom/write"\n  - url: "not a url"\n', env: {} }));
  assert.deepEqual(issues.map((i) => i.path), ['remote_write[1].url', 'remote_write[2].url']);
  assert.match(issues[0]!.message, /scheme must be http or https/);
  assert.match(issues[1]!.message, /invalid URL/);
});

test('bad durations, listen addresses and bounds are reported together', () => {
  const issues = issuesOf(() => loadConfig(schema, { text: 'interval: 15\nlisten: "9115"\nworkers: 0\n', env: {} }));
  assert.deepEqual(issues.map((i) => i.path).sort(), ['interval', 'listen', 'workers']);
});

test('PROBEMESH_* env overrides are typed and named in errors', () => {
  const c = loadConfig(schema, { text: 'id: from-file\n', env: { PROBEMESH_ID: 'from-env', PROBEMESH_NATS_SERVERS: 'nats://a:1, nats://b:2', PROBEMESH_WORKERS: '8', PROBEMESH_DEBUG: 'true', PROBEMESH_UNRELATED: 'x' } });
  assert.equal(c.id, 'from-env');
  assert.deepEqual(c.nats.servers, ['nats://a:1', 'nats://b:2']);
  assert.equal(c.workers, 8);
  assert.equal(c.debug, true);
  const issues = issuesOf(() => loadConfig(schema, { env: { PROBEMESH_WORKERS: 'lots' } }));
  assert.equal(issues[0]!.path, 'workers');
  assert.equal(issues[0]!.env, 'PROBEMESH_WORKERS');
});

test('unreadable and unparsable files are a clear error, not a crash', () => {
  assert.throws(() => loadConfig(schema, { file: '/nonexistent/probemesh.yml', env: {} }), (e: unknown) => e instanceof ProbemeshError && e.code === ErrorCodes.CONFIG_UNREADABLE && /nonexistent\/probemesh.yml/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'pm-cfg-'));
  const f = join(dir, 'bad.yml');
  writeFileSync(f, 'nats:\n  servers: [a\n');
  assert.throws(() => loadConfig(schema, { file: f, env: {} }), (e: unknown) => e instanceof ProbemeshError && e.code === ErrorCodes.CONFIG_UNREADABLE && /line \d+/.test(e.message));
  writeFileSync(f, '- just\n- a list\n');
  assert.throws(() => loadConfig(schema, { file: f, env: {} }), /must be a YAML mapping/);
});

test('describeSchema documents every leaf with its env variable and default', () => {
  const md = describeSchema(schema);
  assert.match(md, /\| `nats.servers` \| `PROBEMESH_NATS_SERVERS` \| `\["nats:\/\/127.0.0.1:4222"\]` \|/);
  assert.match(md, /\| `remote_write` \|/);
});
