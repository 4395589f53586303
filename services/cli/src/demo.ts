/**
 * Demo targets for `probemesh up` without a targets file: a local HTTP server with a
 * few API-like endpoints of known behaviour, so the mesh has something to measure.
 */
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';

/** A running demo server. */
export interface DemoTargets {
  /** Base URL, http://127.0.0.1:<port>. */
  baseUrl: string;
  /** Target URLs with a short description each. */
  targets: { url: string; what: string }[];
  /** Stops the server. */
  close(): Promise<void>;
}

/** Starts the demo server on 127.0.0.1 (`port` 0 = any free port). */
export async function startDemoTargets(port = 0): Promise<DemoTargets> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, delayMs = 0) =>
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      }, delayMs);
    switch (path) {
      case '/api/health':
        return reply(200, '{"status":"ok"}');
      case '/api/orders':
        return reply(200, JSON.stringify({ orders: Array.from({ length: 50 }, (_, i) => ({ id: i })) }), 20 + Math.random() * 40);
      case '/api/search':
        return reply(200, '{"results":[]}', 100 + Math.random() * 100);
      case '/api/flaky':
        return requests % 5 === 0 ? reply(500, '{"error":"flaky"}') : reply(200, '{"status":"ok"}', 5);
      case '/api/broken':
        return reply(503, '{"error":"maintenance"}');
      default:
        return reply(404, '{"error":"not found"}');
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl,
    targets: [
      { url: `${baseUrl}/api/health`, what: 'fast, always 200' },
      { url: `${baseUrl}/api/orders`, what: '200 after 20-60 ms' },
      { url: `${baseUrl}/api/search`, what: '200 after 100-200 ms' },
      { url: `${baseUrl}/api/flaky`, what: 'every 5th request 500' },
      { url: `${baseUrl}/api/broken`, what: 'always 503 (failure code http_status)' },
    ],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
