import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '@probemesh/common';
import { proberConfigSchema } from './config';
import { blackboxFileSchema, builtinModules, loadModuleDefinitions, ProbeModules } from './modules';
import { HttpProbeOptions, PROBE_KINDS } from './probes';

const TESTDATA = join(__dirname, '..', 'testdata');
const available = new Set(Object.keys(PROBE_KINDS));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `ConfigError expected, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('blackbox.yml fixtures', () => {
  const invalid = readdirSync(TESTDATA).filter((f) => f.startsWith('invalid-'));
  it('there are invalid fixtures', () => assert.ok(invalid.length >= 10, invalid.join()));
  for (const f of invalid) {
    it(`${f} fails with its path`, () => {
      const file = join(TESTDATA, f);
      const want = /^# error: (.+)$/m.exec(readFileSync(file, 'utf8'))?.[1];
      assert.ok(want, `${f} states its expected error in a "# error:" line`);
      const err = configError(() => loadConfig(blackboxFileSchema, { file, env: {} }));
      assert.ok(err.message.includes(want), `${err.message}\n  should contain: ${want}`);
      assert.ok(err.message.includes(f), 'names the file');
    });
  }

  it('seed.yml: the seed-style http_2xx loads as written', () => {
    const mods = loadConfig(blackboxFileSchema, { file: join(TESTDATA, 'seed.yml'), env: {} }).modules;
    const m = mods.http_2xx!;
    assert.equal(m.prober, 'http');
    assert.equal(m.timeoutMs, 5_000);
    const http = m.http as HttpProbeOptions;
    assert.deepEqual(http.valid_http_versions, ['HTTP/1.1', 'HTTP/2.0']);
    assert.equal(http.fail_if_not_ssl, true);
    assert.equal(http.preferred_ip_protocol, 'ip4');
    assert.equal(http.enable_http2, true, 'blackbox default');
    assert.deepEqual(new ProbeModules(mods).names(), ['http_2xx']);
  });

  it('example-http.yml (blackbox example http modules) loads and builds', () => {
    const mods = loadConfig(blackboxFileSchema, { file: join(TESTDATA, 'example-http.yml'), env: {} }).modules;
    assert.equal(Object.keys(mods).length, 8);
    const ex = mods.http_2xx_example!.http as HttpProbeOptions;
    assert.equal(ex.headers.Host, 'vhost.example.com');
    assert.equal(ex.fail_if_header_matches[0]?.allow_missing, true);
    assert.equal(ex.ip_protocol_fallback, false);
    assert.equal((mods.http_body_limit!.http as HttpProbeOptions).body_size_limit, 10 * 1024 * 1024);
    assert.equal((mods.http_post_2xx!.http as HttpProbeOptions).body, '{}');
    assert.equal(new ProbeModules(mods).names().length, 8);
  });

  for (const f of ['example.yml', 'debian-blackbox.yml']) {
    it(`${f} (every protocol) loads; a module whose protocol is not built in yet fails only on its prober`, () => {
      const file = join(TESTDATA, f);
      const text = readFileSync(file, 'utf8');
      const used = new Set([...text.matchAll(/^\s+prober: (\w+)/gm)].map((m) => m[1]!));
      const missing = [...used].filter((p) => !available.has(p));
      if (missing.length === 0) {
        const mods = loadConfig(blackboxFileSchema, { file, env: {} }).modules;
        assert.ok(Object.keys(mods).length > 5);
        assert.ok(new ProbeModules(mods).names().length > 5);
        return;
      }
      const err = configError(() => loadConfig(blackboxFileSchema, { file, env: {} }));
      for (const i of err.issues) assert.match(`${i.path}: ${i.message}`, new RegExp(`^modules\\.\\w+\\.prober: unknown prober "(${missing.join('|')})"`), `only missing protocols fail: ${i.path}: ${i.message}`);
    });
  }
});

describe('module definitions', () => {
  it('built-ins: blackbox example modules whose protocol exists', () => {
    const b = builtinModules();
    assert.equal(b.http_2xx?.prober, 'http');
    assert.equal((b.http_post_2xx?.http as HttpProbeOptions).method, 'POST');
    for (const [name, def] of Object.entries(b)) assert.ok(available.has(def.prober), `${name}: ${def.prober} exists`);
    assert.equal('tcp_connect' in b, available.has('tcp'));
    assert.equal('icmp' in b, available.has('icmp'));
  });

  it('prober config: modules_file and inline modules; inline wins over the file, the file over built-ins', () => {
    const cfg = loadConfig(proberConfigSchema, {
      env: {},
      text: [`modules_file: ${join(TESTDATA, 'seed.yml')}`, 'modules:', '  http_2xx_fast:', '    prober: http', '    timeout: 1s', '  http_post_2xx:', '    prober: http', '    http:', '      method: PUT'].join('\n'),
    });
    const defs = loadModuleDefinitions(cfg);
    assert.equal((defs.http_2xx!.http as HttpProbeOptions).fail_if_not_ssl, true, 'seed.yml replaced the built-in http_2xx');
    assert.equal((defs.http_post_2xx!.http as HttpProbeOptions).method, 'PUT', 'inline replaced the built-in');
    assert.equal(defs.http_2xx_fast!.timeoutMs, 1_000);
    const m = new ProbeModules(defs);
    assert.equal(m.effectiveTimeoutMs('http_2xx_fast', 5_000), 1_000);
  });

  it('prober config: an unknown key inside an inline module is rejected with its path', () => {
    const err = configError(() => loadConfig(proberConfigSchema, { env: {}, text: 'modules:\n  http_2xx:\n    prober: http\n    http:\n      valid_status_code: [200]\n' }));
    assert.match(err.message, /modules\.http_2xx\.http\.valid_status_code: unknown key/);
  });

  it('a module file that cannot be read names the file', () => {
    assert.throws(() => loadModuleDefinitions({ modules_file: join(TESTDATA, 'nope.yml') }), /cannot read config file .*nope\.yml/);
  });

  it('a CA file that does not exist fails when the module is built, naming the module', () => {
    const mods = loadConfig(blackboxFileSchema, { env: {}, text: 'modules:\n  ca:\n    prober: http\n    http:\n      tls_config:\n        ca_file: /nonexistent/ca.pem\n' }).modules;
    assert.throws(() => new ProbeModules(mods), /module ca: .*ENOENT/);
  });
});

describe('heartbeat', () => {
  it('lists the loaded module names (Heartbeat.modules)', async () => {
    const { HeartbeatSender } = await import('./heartbeat');
    const { probemesh } = await import('@probemesh/proto');
    const { AnchoredClock, silentLogger } = await import('@probemesh/common');
    const m = new ProbeModules(builtinModules());
    const hb = new HeartbeatSender(
      { prober: 'p', region: 'r', zone: 'z', capacity: 1, httpUrl: 'http://x', appliedEpoch: () => 0n, targets: () => 0, modules: () => m.names() },
      { publish: () => undefined, register: async () => undefined },
      { intervalMs: 1000, clock: new AnchoredClock(), log: silentLogger() },
    );
    assert.deepEqual(probemesh.v1.Heartbeat.decode(hb.encode(false)).modules, m.names());
  });
});
