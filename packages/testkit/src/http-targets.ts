/** A local HTTP server with routes whose answers tests can predict: the probe targets. */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/** Started by {@link startHttpTargets}. */
export interface HttpTargets extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly baseUrl: string;
  readonly port: number;
  /**
   * Requests served so far for `path` (pathname without query), e.g. `hits('/ok')`;
   * lets a test see that a target is (still, or again) being probed.
   */
  hits(path: string): number;
  /** Closes the server and every open connection. */
  close(): Promise<void>;
}

/**
 * Starts an HTTP/1.1 server on 127.0.0.1, random port, with:
 * - `/ok` → 200 `ok`
 * - `/fail` → 500 `fail`
 * - `/status/<code>` → that status
 * - `/slow?ms=N` → waits N ms (default 1000) before the first byte, then 200 `slow`
 * - `/redirect` → 302 to `/ok`
 * - anything else → 404
 */
export async function startHttpTargets(): Promise<HttpTargets> {
  const counts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    counts.set(u.pathname, (counts.get(u.pathname) ?? 0) + 1);
    const send = (status: number, body: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
    };
    const status = /^\/status\/(\d{3})$/.exec(u.pathname);
    if (u.pathname === '/ok') send(200, 'ok');
    else if (u.pathname === '/fail') send(500, 'fail');
    else if (status) send(Number(status[1]), `status ${status[1]}`);
    else if (u.pathname === '/redirect') send(302, 'redirect', { location: '/ok' });
    else if (u.pathname === '/slow') {
      const ms = Number(u.searchParams.get('ms') ?? '1000');
      const t = setTimeout(() => {
        timers.delete(t);
        send(200, 'slow');
      }, Number.isFinite(ms) && ms >= 0 ? ms : 1000);
      timers.add(t);
      res.on('close', () => {
        clearTimeout(t);
        timers.delete(t);
      });
    } else send(404, 'not found');
  };
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    hits: (path) => counts.get(path) ?? 0,
    close,
    [Symbol.asyncDispose]: close,
  };
}
