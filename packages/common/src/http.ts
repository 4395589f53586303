/**
 * The small HTTP server every service runs for `/metrics` (and the prober's `/probe`):
 * node:http, a route table, a prom-client Registry passed in (never the global one).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { Registry } from 'prom-client';
import { ErrorCodes, ProbemeshError } from './errors';
import { Logger } from './log';
import { addIssue, Infer, listenAddress, obj, optional, record, str } from './schema';

/** TLS of an HTTP endpoint, named like Prometheus's web config `tls_server_config`. */
export const tlsServerSchema = obj({
  cert_file: str({ nonEmpty: true, doc: 'Server certificate (PEM).' }),
  key_file: str({ nonEmpty: true, doc: 'Server key (PEM, never logged).' }),
  client_ca_file: optional(str({ doc: 'CA that client certificates must chain to.' })),
  client_auth_type: str({ default: 'NoClientCert', oneOf: ['NoClientCert', 'RequireAndVerifyClientCert'], doc: 'Whether clients must present a certificate signed by client_ca_file.' }),
  min_version: str({ default: 'TLS12', oneOf: ['TLS12', 'TLS13'], doc: 'Lowest TLS version accepted.' }),
});

/**
 * HTTP endpoint settings (`http:` in every service config): bind address, and like
 * Prometheus's web config optional TLS and basic auth users with bcrypt hashes.
 */
export function httpSchema(defaultListen: string) {
  return obj(
    {
      listen: listenAddress({ default: defaultListen, doc: `Address of the HTTP endpoint (default ${defaultListen}).` }),
      tls_server_config: optional(tlsServerSchema),
      basic_auth_users: optional(record(str({ pattern: /^\$2[aby]\$\d\d\$/, doc: 'bcrypt hash' }), { doc: 'user → bcrypt hash of the password (htpasswd -nbB); every request must authenticate.' })),
    },
    {
      check(v, path, ctx) {
        const t = v.tls_server_config;
        if (t && t.client_auth_type === 'RequireAndVerifyClientCert' && !t.client_ca_file) addIssue(ctx, `${path ? path + '.' : ''}tls_server_config.client_ca_file`, 'required when client_auth_type is RequireAndVerifyClientCert');
      },
    },
  );
}

/** Parsed `http:` settings. */
export type HttpSettings = Infer<ReturnType<typeof httpSchema>>;

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ProbemeshError(ErrorCodes.CONFIG_INVALID, `http.tls_server_config.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Checks `Authorization: Basic` against bcrypt hashes. bcrypt is slow on purpose
 * (~50 ms), so verified credentials are remembered by their SHA-256 (bounded).
 */
class BasicAuth {
  private readonly verified = new Map<string, Buffer>();
  constructor(private readonly users: Readonly<Record<string, string>>) {}

  check(header: string | undefined): boolean {
    if (!header?.startsWith('Basic ')) return false;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return false;
    const user = decoded.slice(0, i);
    const hash = this.users[user];
    if (hash === undefined) return false;
    const digest = createHash('sha256').update(decoded).digest();
    const known = this.verified.get(user);
    if (known && timingSafeEqual(known, digest)) return true;
    if (!bcrypt.compareSync(decoded.slice(i + 1), hash)) return false;
    if (this.verified.size > 1000) this.verified.clear();
    this.verified.set(user, digest);
    return true;
  }
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

/**
 * Starts the server with `/metrics` from `registry` plus `routes` (path → handler).
 * `settings` is the `http:` config (or just a listen address).
 */
export async function serveHttp(settings: string | HttpSettings, registry: Registry, log: Logger, routes: Record<string, Route> = {}): Promise<HttpEndpoint> {
  const cfg: HttpSettings = typeof settings === 'string' ? { listen: settings, tls_server_config: undefined, basic_auth_users: undefined } : settings;
  const listen = cfg.listen;
  const auth = cfg.basic_auth_users ? new BasicAuth(cfg.basic_auth_users) : undefined;
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
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (auth && !auth.check(req.headers.authorization)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="probemesh"' });
      res.end('Unauthorized\n');
      return;
    }
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
  };
  const tls = cfg.tls_server_config;
  const server: Server = tls
    ? (createHttpsServer(
        {
          cert: readPem(tls.cert_file, 'cert_file'),
          key: readPem(tls.key_file, 'key_file'),
          ca: tls.client_ca_file ? readPem(tls.client_ca_file, 'client_ca_file') : undefined,
          requestCert: tls.client_auth_type === 'RequireAndVerifyClientCert',
          rejectUnauthorized: tls.client_auth_type === 'RequireAndVerifyClientCert',
          minVersion: tls.min_version === 'TLS13' ? 'TLSv1.3' : 'TLSv1.2',
        },
        handler,
      ) as unknown as Server)
    : createServer(handler);
  server.keepAliveTimeout = 65_000;
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
