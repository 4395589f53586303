/**
 * `probemesh up` as a user runs it: the real CLI in a child process, with random
 * ports and its own state dir. Demo targets must reach Prometheus, and SIGTERM must
 * leave no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../harness';

const CLI = join(__dirname, '..', '..', '..', 'services', 'cli', 'dist', 'main.js');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('probemesh up runs the mesh, demo targets reach Prometheus, SIGTERM leaves no process', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pm-up-'));
  const child = spawn(process.execPath, [CLI, 'up', '--random-ports', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let state: { prometheus: string; targets: string[]; pids: Record<string, number> } | undefined;
  try {
    const earlyExit = exited.then((code) => {
      throw new Error(`probemesh up exited early (${code}):\n${out}`);
    });
    state = await Promise.race([
      earlyExit,
      waitFor(async () => (existsSync(join(dir, 'up.json')) && out.includes('Ctrl-C stops everything') ? JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) : undefined), {
        timeoutMs: 120_000,
        intervalMs: 250,
        what: 'probemesh up to report it is running',
      }),
    ]);
    earlyExit.catch(() => undefined);
    assert.match(out, /Prometheus\s+http:\/\/127\.0\.0\.1:\d+/, 'prints the Prometheus URL');
    assert.match(out, /probemesh targets list --addr 127\.0\.0\.1:\d+/, 'prints CLI examples');
    assert.equal(state!.targets.length, 5, 'five demo targets');
    assert.deepEqual(Object.keys(state!.pids).sort(), ['aggregator', 'coordinator', 'nats', 'prober-a', 'prober-b', 'prober-c', 'prometheus']);

    const instances = await waitFor(async () => {
      const r = await fetch(`${state!.prometheus}/api/v1/query?query=${encodeURIComponent('probe_success{env="demo"}')}`);
      const body = (await r.json()) as { data: { result: { metric: Record<string, string> }[] } };
      const seen = new Set(body.data.result.map((s) => s.metric.instance));
      return state!.targets.every((t) => seen.has(t)) ? seen : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'probe_success in Prometheus for every demo target' });
    assert.equal(instances.size, 5);
  } finally {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 40_000)))]);
    clearTimeout(timer); // else it holds the test process 40 s after the test
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 0, `probemesh up exits 0 on SIGTERM:\n${out.slice(-2000)}`);
    assert.match(out, /probemesh up: stopped/);
    for (const [name, pid] of Object.entries(state?.pids ?? {})) assert.ok(!alive(pid), `${name} (pid ${pid}) is gone`);
    rmSync(dir, { recursive: true, force: true });
  }
});
