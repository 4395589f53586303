/**
 * The small HTTP server every service runs for `/metrics` (and the prober's `/probe`):
 * node:http, a route table, a prom-client Registry passed in (never the global one).
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { Logger } from './log';
import { listenAddress, obj } from './schema';

/** HTTP endpoint settings (`http:` in every service config). */
export function httpSchema(defaultListen: string) {
  return obj({
    listen: listenAddress({ default: defaultListen, doc: `Address of the /metrics endpoint (default ${defaultListen}).` }),
  });
}

/** A route handler. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** A running HTTP server. */
export interface HttpEndpoint {
  /** Base URL, e.g. http://127.0.0.1:9115. */
  url: string;
  /** Bound port. */
  port: number;
  /** Stops accepting and closes open connections. */
  close(): Promise<void>;
}

/** Splits "host:port" (IPv6 in brackets). */
export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(addr.slice(i + 1)) };
}

/** Starts the server with `/metrics` from `registry` plus `routes` (path → handler). */
export async function serveHttp(listen: string, registry: Registry, log: Logger, routes: Record<string, Route> = {}): Promise<HttpEndpoint> {
  const all: Record<string, Route> = {
    '/metrics': async (_req, res) => {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
    },
    '/-/healthy': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('OK\n');
    },
    ...routes,
  };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const route = all[u.pathname];
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found; try ${Object.keys(all).join(', ')}\n`);
      return;
    }
    Promise.resolve(route(req, res, u)).catch((err) => {
      log.error({ err, path: u.pathname }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${(err as Error).message}\n`);
    });
  });
  server.keepAliveTimeout = 65_000;
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
