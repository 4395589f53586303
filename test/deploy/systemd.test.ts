/**
 * deploy/systemd: structure of every unit (our own reader), `systemd-analyze verify`
 * where systemd is installed, and — as root with bpftrace — that the prober's capability
 * set is what bpftrace 0.17 and fping really need, by running them under `setpriv` with
 * exactly the unit's capability bounding set.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEPLOY_DIR } from './paths';
import { capabilitySet, checkUnit, lastValue, parseUnit, UnitFile } from './unit-file';

const SYSTEMD_DIR = join(DEPLOY_DIR, 'systemd');
const SERVICES = ['coordinator', 'prober', 'aggregator'] as const;
const PROBER_CAPS = ['CAP_NET_RAW', 'CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN'];

function unitText(name: string): string {
  return readFileSync(join(SYSTEMD_DIR, name), 'utf8');
}
function unit(name: string): UnitFile {
  return parseUnit(unitText(name));
}
function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe('systemd units: structure', () => {
  for (const svc of SERVICES) {
    test(`probemesh-${svc}.service is well-formed, restarts on failure and is hardened`, () => {
      const u = unit(`probemesh-${svc}.service`);
      assert.deepEqual(checkUnit(u), []);
      assert.equal(lastValue(u, 'Service', 'ExecStart'), `/usr/local/bin/probemesh ${svc} --config /etc/probemesh/${svc}.yml`);
      assert.equal(lastValue(u, 'Service', 'Restart'), 'on-failure');
      const expect: Record<string, string> = {
        NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes',
        ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes', ProtectControlGroups: 'yes', RestrictSUIDSGID: 'yes',
        LockPersonality: 'yes', RestrictNamespaces: 'yes', SystemCallArchitectures: 'native', Environment: 'NODE_EXTRA_CA_CERTS=/etc/probemesh/tls/ca.pem',
      };
      for (const [k, v] of Object.entries(expect)) assert.equal(lastValue(u, 'Service', k), v, `${svc}: ${k}`);
      assert.match(lastValue(u, 'Service', 'RestrictAddressFamilies') ?? '', /^AF_UNIX AF_INET AF_INET6/);
      assert.ok(u.get('Service')?.get('SystemCallFilter')?.some((v) => v.split(/\s+/).includes('@system-service')), `${svc}: SystemCallFilter=@system-service`);
      assert.equal(lastValue(u, 'Service', 'EnvironmentFile'), `-/etc/probemesh/${svc}.env`);
    });
  }

  test('coordinator and aggregator run as the probemesh user with no capabilities', () => {
    for (const svc of ['coordinator', 'aggregator']) {
      const u = unit(`probemesh-${svc}.service`);
      assert.equal(lastValue(u, 'Service', 'User'), 'probemesh');
      assert.deepEqual(capabilitySet(u, 'CapabilityBoundingSet'), []);
      assert.deepEqual(capabilitySet(u, 'AmbientCapabilities'), []);
    }
  });

  test('the prober holds exactly CAP_NET_RAW, CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, and may lock memory', () => {
    const u = unit('probemesh-prober.service');
    assert.deepEqual(capabilitySet(u, 'CapabilityBoundingSet'), PROBER_CAPS);
    assert.deepEqual(capabilitySet(u, 'AmbientCapabilities'), PROBER_CAPS);
    assert.equal(lastValue(u, 'Service', 'LimitMEMLOCK'), 'infinity');
    assert.equal(lastValue(u, 'Service', 'User'), undefined, 'uid 0 (bpftrace 0.17 demands it), bounded to four capabilities');
    assert.match(lastValue(u, 'Service', 'SystemCallFilter') ?? '', /\bbpf\b.*\bperf_event_open\b/);
    assert.equal(lastValue(u, 'Service', 'ProtectClock'), undefined, 'adjtimex(2) must stay callable');
    assert.match(unitText('probemesh-prober.service'), /CAP_SYS_ADMIN +eBPF with bpftrace 0\.17 only/);
  });

  test('the no-eBPF drop-in runs the prober as probemesh with CAP_NET_RAW only', () => {
    const drop = unit('probemesh-prober-no-ebpf.conf');
    assert.deepEqual(checkUnit(drop, { dropIn: true }), []);
    // systemd merges a drop-in after the unit: concatenate the [Service] assignments.
    const merged = parseUnit(unitText('probemesh-prober.service').replace('[Install]', `${unitText('probemesh-prober-no-ebpf.conf').replace('[Service]', '')}\n[Install]`));
    assert.deepEqual(capabilitySet(merged, 'CapabilityBoundingSet'), ['CAP_NET_RAW']);
    assert.deepEqual(capabilitySet(merged, 'AmbientCapabilities'), ['CAP_NET_RAW']);
    assert.equal(lastValue(merged, 'Service', 'User'), 'probemesh');
  });

  test('the NATS unit is well-formed and runs nats-server with the rendered config', () => {
    const u = unit('probemesh-nats.service');
    assert.deepEqual(checkUnit(u), []);
    assert.equal(lastValue(u, 'Service', 'ExecStart'), '/usr/sbin/nats-server -c /etc/probemesh/nats-server.conf');
    assert.equal(lastValue(u, 'Service', 'EnvironmentFile'), '/etc/probemesh/nats.env');
  });

  test('the structural check catches broken units', () => {
    const bad = parseUnit('[Unit]\nDescription=x\n[Service]\nExecStart=probemesh prober\nRestart=sometimes\nCapabilityBoundingSet=CAP_EVERYTHING\nFooBar=1\n');
    const issues = checkUnit(bad);
    for (const want of ['no [Install] section', 'ExecStart must start with an absolute path', 'Restart: bad value sometimes', 'unknown capability CAP_EVERYTHING', 'unknown key FooBar']) {
      assert.ok(issues.some((i) => i.includes(want)), `${want} in ${issues.join('; ')}`);
    }
    assert.throws(() => parseUnit('[Service]\nnot a key value\n'), /not "Key=value"/);
  });
});

describe('systemd units: systemd-analyze verify', () => {
  const analyze = which('systemd-analyze');

  test('every unit passes systemd-analyze verify', (t) => {
    if (!analyze) {
      t.skip('systemd-analyze is not installed here; the structural checks above still ran');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pm-units-'));
    try {
      // The probemesh binary is not installed on a test machine: verify checks that the
      // ExecStart binary exists, so point it at a stand-in (the path itself is asserted above).
      const fake = join(dir, 'probemesh');
      writeFileSync(fake, '#!/bin/sh\nexit 0\n');
      chmodSync(fake, 0o755);
      const names = ['probemesh-coordinator.service', 'probemesh-prober.service', 'probemesh-aggregator.service', 'probemesh-nats.service'];
      for (const n of names) writeFileSync(join(dir, n), unitText(n).replaceAll('/usr/local/bin/probemesh', fake));
      const r = spawnSync(analyze, ['verify', '--man=no', ...names.map((n) => join(dir, n))], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((r.stdout + r.stderr).trim(), '', 'no warnings');
      // Control: verify does report a bad key (so silence above means something).
      writeFileSync(join(dir, 'bad.service'), '[Service]\nExecStart=/bin/true\nFooBar=1\n');
      const bad = spawnSync(analyze, ['verify', '--man=no', join(dir, 'bad.service')], { encoding: 'utf8', timeout: 60_000 });
      assert.match(bad.stdout + bad.stderr, /Unknown key 'FooBar'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('systemd units: the prober capability set, measured', () => {
  const isRoot = process.getuid?.() === 0;
  const setpriv = which('setpriv');
  const bpftrace = which('bpftrace');
  const fping = which('fping');
  const tracefs = existsSync('/sys/kernel/tracing/events/sock/inet_sock_set_state');

  /** Runs `cmd` as uid `uid` with exactly `caps` (bounding, inheritable, ambient) and no_new_privs, like the unit. */
  function runWithCaps(caps: string[], uid: number, cmd: string[], onStart?: () => void, timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
    const capList = caps.map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase()).join(',');
    const args = ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--no-new-privs', '--bounding-set', `-all${capList ? ',' + capList : ''}`, '--inh-caps', `-all${capList ? ',' + capList : ''}`];
    if (uid !== 0 && capList) args.push('--ambient-caps', capList);
    return new Promise((resolve) => {
      const p = spawn(setpriv!, [...args, '--', ...cmd], { env: { ...process.env, __BPFTRACE_NOTIFY_PROBES_ATTACHED: '1' } });
      let out = '';
      let started = false;
      const onData = (d: Buffer) => {
        out += d.toString();
        if (!started && out.includes('__BPFTRACE_NOTIFY_PROBES_ATTACHED')) {
          started = true;
          onStart?.();
        }
      };
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  const PROGRAM = [
    'tracepoint:sock:inet_sock_set_state /args->newstate == TCP_ESTABLISHED && args->protocol == IPPROTO_TCP/ {',
    '  $tp = (struct tcp_sock *)args->skaddr;',
    '  printf("{\\"srtt_us\\":%u}\\n", $tp->srtt_us >> 3);',
    '  exit();',
    '}',
    'interval:s:15 { exit(); }',
  ].join('\n');

  async function traceOneConnect(caps: string[]): Promise<{ code: number | null; out: string }> {
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      return await runWithCaps(caps, 0, [bpftrace!, '-e', PROGRAM], () => {
        // A few connects once attached: one of them is the traced SYN_SENT → ESTABLISHED.
        for (let i = 0; i < 3; i++) setTimeout(() => connect(port, '127.0.0.1').on('error', () => {}).end(), 200 * i);
      });
    } finally {
      server.close();
    }
  }

  test('bpftrace reads struct tcp_sock on a tracepoint with exactly the unit\'s capabilities, and not without CAP_SYS_ADMIN', async (t) => {
    if (!isRoot || !setpriv || !bpftrace) {
      t.skip(`needs root, setpriv and bpftrace (root=${isRoot}, setpriv=${!!setpriv}, bpftrace=${!!bpftrace}); CI runs as root`);
      return;
    }
    if (!tracefs) {
      t.skip('tracefs is not mounted at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing)');
      return;
    }
    const caps = capabilitySet(unit('probemesh-prober.service'), 'CapabilityBoundingSet');
    const ok = await traceOneConnect(caps);
    assert.match(ok.out, /\{"srtt_us":\d+\}/, ok.out);
    const without = await traceOneConnect(caps.filter((c) => c !== 'CAP_SYS_ADMIN'));
    assert.doesNotMatch(without.out, /srtt_us":\d/);
    assert.match(without.out, /Unknown struct\/union: 'struct tcp_sock'|Unknown identifier/);
  });

  test('fping works as the unprivileged user with only CAP_NET_RAW (the no-eBPF drop-in), and fails without it', async (t) => {
    if (!isRoot || !setpriv || !fping) {
      t.skip(`needs root, setpriv and fping (root=${isRoot}); CI runs as root`);
      return;
    }
    const caps = capabilitySet(parseUnit(unitText('probemesh-prober-no-ebpf.conf')), 'AmbientCapabilities');
    assert.deepEqual(caps, ['CAP_NET_RAW']);
    const ok = await runWithCaps(caps, 65534, [fping, '-c', '1', '-q', '127.0.0.1']);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /127\.0\.0\.1 : xmt\/rcv\/%loss = 1\/1\/0%/);
    const none = await runWithCaps([], 65534, [fping, '-c', '1', '-q', '127.0.0.1']);
    assert.notEqual(none.code, 0);
  });
});
