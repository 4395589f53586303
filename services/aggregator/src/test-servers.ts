/**
 * Test harness: real nats-server and Prometheus (remote-write receiver) on random
 * loopback ports with temporary data directories, stopped by PID and cleaned up.
 * Used by the integration tests only; not exported from the package.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A started server process. */
export interface TestServer {
  /** Base URL (nats://… or http://…). */
  url: string;
  /** Listening port. */
  port: number;
  /** Kills the process (SIGTERM, then SIGKILL) and removes its temp dir. */
  stop(): Promise<void>;
}

/** Path of the nats-server binary, if installed. */
export const NATS_SERVER_BIN = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));
/** Path of the prometheus binary, if installed. */
export const PROMETHEUS_BIN = ['/usr/bin/prometheus'].find((p) => existsSync(p));

/** Returns a currently free loopback TCP port. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function stopper(proc: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

async function waitFor(what: string, proc: ChildProcess, ready: () => Promise<boolean>, output: () => string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}: ${output().slice(-2000)}`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`${what} not ready after ${ms}ms: ${output().slice(-2000)}`);
}

/** Starts `nats-server -js` on a random loopback port. */
export async function startNatsServer(): Promise<TestServer> {
  if (!NATS_SERVER_BIN) throw new Error('nats-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'pm-agg-nats-'));
  const port = await freePort();
  const proc = spawn(NATS_SERVER_BIN, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const stop = stopper(proc, dir);
  try {
    await waitFor('nats-server', proc, async () => /Server is ready/.test(out), () => out);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `nats://127.0.0.1:${port}`, port, stop };
}

/** Starts Prometheus with the remote-write receiver on a random loopback port. */
export async function startPrometheus(): Promise<TestServer> {
  if (!PROMETHEUS_BIN) throw new Error('prometheus is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'pm-agg-prom-'));
  writeFileSync(join(dir, 'prometheus.yml'), 'global: {scrape_interval: 15s}\n');
  const port = await freePort();
  const proc = spawn(
    PROMETHEUS_BIN,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--web.enable-remote-write-receiver'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(proc, dir);
  try {
    await waitFor('prometheus', proc, async () => (await fetch(`${url}/-/ready`)).status === 200, () => out, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, stop };
}

/** Runs an instant PromQL query; returns [labels, value] pairs. */
export async function promQuery(base: string, query: string): Promise<{ metric: Record<string, string>; value: number; timestampMs: number }[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]), timestampMs: Math.round(r.value[0] * 1000) }));
}
