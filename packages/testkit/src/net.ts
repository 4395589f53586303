/** Loopback ports, temp dirs and polling shared by the harness. */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (bound to port 0, read, closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** An http URL on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedUrl(path = '/'): Promise<string> {
  return `http://127.0.0.1:${await freePort()}${path}`;
}

/** Creates a fresh directory under the OS temp dir named `probemesh-<prefix>-XXXXXX`. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `probemesh-${prefix}-`));
}

/** Removes a directory tree (no error if it is already gone). */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long. @default 10000 */
  timeoutMs?: number;
  /** Pause between attempts. @default 100 */
  intervalMs?: number;
  /** What is awaited, for the timeout message. @default 'condition' */
  what?: string;
}

/**
 * Calls `fn` until it returns something other than `undefined` or `false`, and returns that.
 * A throw counts as "not yet" and is kept as the last error. On timeout throws
 * `timed out after <X>ms waiting for <what>; last error: <...>`.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const last = lastErr === undefined ? 'none (the condition was never met)' : lastErr instanceof Error ? lastErr.message : String(lastErr);
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${opts.what ?? 'condition'}; last error: ${last}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/** GET `url` with a timeout; returns status and body text. Throws on network errors. */
export async function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}
