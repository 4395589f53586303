import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer, Server } from 'node:http';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AnchoredClock, silentLogger } from '@probemesh/common';
import { ProbeModules } from '../modules';
import { DEFAULT_PROGRAM, EbpfRunner, findExecutable } from './runner';

describe('EbpfRunner degrades with a reason', () => {
  it('disabled in config', async () => {
    const r = new EbpfRunner({ enabled: false, log: silentLogger() });
    assert.deepEqual(await r.start(), { up: false, reason: 'disabled in config (ebpf.enabled: false)' });
    assert.equal(await r.join({ remoteAddress: '127.0.0.1', remotePort: 1, startMonoNs: 0n, endMonoNs: 1n }), undefined);
  });
  it('bpftrace missing, or not root', async () => {
    const r = new EbpfRunner({ bpftracePath: '/nonexistent/bpftrace', log: silentLogger() });
    const st = await r.start();
    assert.equal(st.up, false);
    assert.match(st.reason, process.getuid?.() === 0 ? /^bpftrace not found \(\/nonexistent\/bpftrace\)$/ : /^not root/);
  });
  it('program missing', { skip: process.getuid?.() !== 0 || !findExecutable('bpftrace') ? 'needs root and bpftrace' : false }, async () => {
    const st = await new EbpfRunner({ programPath: '/nonexistent.bt', log: silentLogger() }).start();
    assert.equal(st.reason, 'program not found (/nonexistent.bt)');
  });
  it('attach failure (a program that does not compile) is reported with bpftrace’s error, and logged once', async (t) => {
    if (process.getuid?.() !== 0 || !findExecutable('bpftrace')) return t.skip('needs root and bpftrace (CI runs as root)');
    const warnings: string[] = [];
    const log = { ...silentLogger(), warn: (o: { reason: string }) => warnings.push(o.reason), info: () => undefined, child: () => log } as never;
    const bad = join(mkdtempSync(join(tmpdir(), 'pm4-bt-')), 'bad.bt');
    writeFileSync(bad, 'tracepoint:sock:inet_sock_set_state { @x = nosuchbuiltin; }\n');
    const r = new EbpfRunner({ programPath: bad, log });
    const st = await r.start();
    assert.equal(st.up, false);
    assert.match(st.reason, /^attach failed: bpftrace exited \(1\): .*nosuchbuiltin/);
    await r.stop();
    assert.deepEqual(warnings, [st.reason]);
    rmSync(dirname(bad), { recursive: true });
  });
});

const canRun = process.getuid?.() === 0 && !!findExecutable('bpftrace') && existsSync('/sys/kernel/btf/vmlinux') && existsSync(DEFAULT_PROGRAM);

describe('EbpfRunner with real bpftrace (root)', { skip: canRun ? false : 'needs root, bpftrace and BTF (CI runs as root)' }, () => {
  let runner: EbpfRunner;
  let server: Server;
  let port: number;
  let refusedPort: number;
  const clock = new AnchoredClock();
  const modules = new ProbeModules();
  const ctx = { clock, log: silentLogger() };
  const target = (url: string): { id: string; url: string; module: string; timeoutMs: number; labels: Record<string, string> } => ({ id: url, url, module: 'http_2xx', timeoutMs: 3000, labels: {} });

  before(async () => {
    server = createServer((_req, res) => setTimeout(() => res.end('hello'), 5));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const tmp = createNetServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    refusedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    runner = new EbpfRunner({ log: silentLogger() });
    const st = await runner.start();
    assert.deepEqual(st, { up: true, reason: '' });
  });
  after(async () => {
    await runner?.stop();
    server?.close();
  });

  it('joins kernel connect time, first byte and srtt to each probe of a real HTTP server', async () => {
    for (let i = 0; i < 20; i++) {
      const out = await modules.run(target(`http://127.0.0.1:${port}/`), AbortSignal.timeout(3000), ctx);
      assert.equal(out.success, true);
      assert.ok(out.socketInfo, 'the http probe exposes its socket');
      const k = await runner.join(out.socketInfo);
      assert.ok(k, `probe ${i} joined`);
      assert.equal(k.localPort, out.socketInfo.localPort);
      const userConnect = out.phases.find((p) => p.name === 'connect')!.durationNs;
      assert.ok(k.connectNs > 0n && k.connectNs <= userConnect, `kernel connect ${k.connectNs} ≤ user-space ${userConnect}`);
      // The server answers after 5 ms: the first byte comes at least that long after ESTABLISHED.
      assert.ok(k.firstByteNs >= 4_000_000n && k.firstByteNs < 2_000_000_000n, `first byte ${k.firstByteNs}`);
      assert.ok(k.srttUs > 0);
      assert.equal(k.retransmits, 0);
      assert.equal(k.resets, 0);
    }
    assert.equal(runner.joiner.heldEvents, 0);
  });

  it('joins every probe of a concurrent burst (many sockets per 20 ms batch) to its own socket', async () => {
    const url = `http://127.0.0.1:${port}/`;
    const ports = new Set<number>();
    let joined = 0;
    let next = 0;
    const n = 600;
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        while (next < n) {
          next++;
          const out = await modules.run(target(url), AbortSignal.timeout(3000), ctx);
          assert.equal(out.success, true, out.failureMessage);
          const k = await runner.join(out.socketInfo!);
          assert.ok(k, 'joined');
          assert.equal(k.localPort, out.socketInfo!.localPort);
          assert.ok(k.connectNs > 0n && k.firstByteNs >= 4_000_000n, `connect ${k.connectNs}, first byte ${k.firstByteNs}`);
          ports.add(k.localPort);
          joined++;
        }
      }),
    );
    assert.equal(joined, n);
    assert.equal(runner.counts.lost, 0);
    assert.equal(runner.joiner.heldEvents, 0, 'no kernel record left unclaimed');
    assert.equal(runner.joiner.waitingProbes, 0);
    assert.ok(ports.size > n / 2, `${ports.size} distinct local ports`);
  });

  it('joins a refused connect (no local port in Node) by peer and window: reset counted, never established', async () => {
    const out = await modules.run(target(`http://127.0.0.1:${refusedPort}/`), AbortSignal.timeout(3000), ctx);
    assert.equal(out.failureCode, 'connect_refused');
    assert.equal(out.socketInfo?.localPort, undefined);
    const k = await runner.join(out.socketInfo!);
    assert.ok(k);
    assert.equal(k.connectNs, 0n);
    assert.equal(k.resets, 1);
    assert.ok(k.localPort > 0);
  });

  it('ignores connections of other processes and answers undefined for a socket it never saw', async () => {
    const k = await runner.join({ remoteAddress: '127.0.0.1', remotePort: 9, localPort: 1, startMonoNs: clock.monoNs(), endMonoNs: clock.monoNs() });
    assert.equal(k, undefined);
  });
});
