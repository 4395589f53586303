import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildSet } from './children';
import { addressInUse, pickPorts, waitUntil } from './up';

const listen = (port = 0): Promise<Server> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(port, '127.0.0.1', () => res(s));
  });

describe('probemesh up: ports and children', () => {
  it('pickPorts: distinct ports free on 127.0.0.1, below the ephemeral range (where outgoing connections take their source ports)', async () => {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    for (let round = 0; round < 5; round++) {
      const ports = await pickPorts(8);
      assert.equal(new Set(ports).size, 8);
      for (const p of ports) {
        assert.ok(p >= 10_000 && p < lo!, `port ${p} below the ephemeral range from ${lo}`);
        const s = await listen(p); // free: binds
        await new Promise((r) => s.close(r));
      }
    }
  });

  it('addressInUse recognises the bind failures of Prometheus, nats-server and Node', () => {
    assert.ok(addressInUse('ts=2026-11-22T08:25:48.789Z caller=main.go:802 level=error msg="Unable to start web listener" err="listen tcp 127.0.0.1:41131: bind: address already in use"'));
    assert.ok(addressInUse('[1] 2026/11/22 08:25:48.789 [FTL] Error listening on port: 127.0.0.1:4222, "listen tcp 127.0.0.1:4222: bind: address already in use"'));
    assert.ok(addressInUse('Error: listen EADDRINUSE: address already in use 127.0.0.1:9116'));
    assert.ok(!addressInUse('level=error msg="opening storage failed"'));
  });

  it('a child that cannot bind its port exits; its log of this start says why, not an earlier start\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-up-test-'));
    const held = await listen();
    const port = (held.address() as { port: number }).port;
    try {
      const script = `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('bound'))`;
      const first = new ChildSet(dir);
      const a = first.start('svc', process.execPath, ['-e', script]);
      assert.match(await a.exited, /exit code 1/);
      assert.ok(addressInUse(first.newLog(a)), first.newLog(a));
      await new Promise((r) => held.close(r));
      const second = new ChildSet(dir);
      const b = second.start('svc', process.execPath, ['-e', `${script}; setTimeout(() => process.exit(0), 300)`]);
      assert.match(await b.exited, /exit code 0/);
      assert.equal(second.newLog(b).trim(), 'bound', 'only what this start wrote');
      assert.ok(addressInUse(readFileSync(join(dir, 'svc.log'), 'utf8')), 'the file keeps the earlier start');
    } finally {
      if (held.listening) await new Promise((r) => held.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('waitUntil names the child that died and, apart, what was being waited for', async () => {
    await assert.rejects(
      waitUntil('nats-server', 5_000, async () => false, () => 'prometheus exited (code 1); see logs/prometheus.log'),
      (err: Error) => err.message === 'prometheus exited (code 1); see logs/prometheus.log (while waiting for nats-server)',
    );
    // A check that holds is not enough when a child died meanwhile (another process may answer on its port).
    let dead: string | undefined;
    await assert.rejects(
      waitUntil('Prometheus', 5_000, async () => ((dead = 'prometheus exited (code 1)'), true), () => dead),
      (err: Error) => err.message === 'prometheus exited (code 1) (while waiting for Prometheus)',
    );
  });
});
