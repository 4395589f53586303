/**
 * A zoo of local HTTP targets with known behaviour, for the http probe tests, the /probe
 * tests, the blackbox compatibility test and the benchmark: HTTP/1.1, h2 over TLS (ALPN),
 * h2c, a TLS 1.2-only server, expired / wrong-host / untrusted certificates, a server that
 * resets after accept and a refused port. Every server listens on 127.0.0.1, port 0.
 */
import { createServer as createHttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, createServer as createH2cServer, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo, createServer as createNetServer, Server } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { makeTestCerts, TestCerts } from './certs';

/** Base URLs (no trailing slash) of the zoo's servers. */
export interface HttpZoo {
  readonly certs: TestCerts;
  /** HTTP/1.1 plain. */
  readonly http: string;
  /** HTTPS with the CA-signed certificate, h2 and http/1.1 by ALPN. */
  readonly h2tls: string;
  /** h2c (prior knowledge only). */
  readonly h2c: string;
  /** HTTPS, HTTP/1.1 only, TLS 1.2 at most. */
  readonly tls12: string;
  /** HTTPS with an expired CA-signed certificate. */
  readonly expired: string;
  /** HTTPS with a CA-signed certificate for wrong.test only. */
  readonly wrongHost: string;
  /** HTTPS with a self-signed certificate. */
  readonly untrusted: string;
  /** Accepts TCP connections and resets them. */
  readonly reset: string;
  /** A port nothing listens on. */
  readonly refused: string;
  /** Requests seen by path (all servers). */
  hits(path: string): number;
  /** Last request seen for `path` (method, headers, body). */
  lastRequest(path: string): { method: string; headers: Record<string, string | string[] | undefined>; body: string } | undefined;
  close(): Promise<void>;
}

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

const TEXT = 'hello compressed world '.repeat(20);

/**
 * Routes: /ok (200 "ok", Last-Modified, X-Probe: yes), /fail (500), /status/<n>,
 * /redirect/<n> (302 chain down to /ok, 5 ms per hop), /loop (redirects forever),
 * /to-https?port=<p> (302 to https://127.0.0.1:<p>/ok), /echo (request as JSON),
 * /gzip /deflate /br (compressed TEXT), /big?bytes=<n>, /cookies (two Set-Cookie),
 * /slow?ms=<n>, anything else 404.
 */
function handler(seen: Map<string, { n: number; last?: { method: string; headers: Record<string, string | string[] | undefined>; body: string } }>) {
  return (req: Req, res: Res): void => {
    const u = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = seen.get(u.pathname) ?? { n: 0 };
      entry.n++;
      entry.last = { method: req.method ?? '', headers: { ...req.headers }, body: Buffer.concat(chunks).toString() };
      seen.set(u.pathname, entry);
      const send = (status: number, body: string | Buffer, headers: Record<string, string | string[]> = {}): void => {
        (res as ServerResponse).writeHead(status, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)), ...headers });
        res.end(body);
      };
      const m = /^\/(status|redirect)\/(\d+)$/.exec(u.pathname);
      if (u.pathname === '/ok') send(200, 'ok', { 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT', 'x-probe': 'yes' });
      else if (u.pathname === '/fail') send(500, 'fail');
      else if (m?.[1] === 'status') send(Number(m[2]), `status ${m[2]}`);
      else if (m?.[1] === 'redirect') {
        const n = Number(m[2]);
        setTimeout(() => send(302, 'moved', { location: n <= 1 ? '/ok' : `/redirect/${n - 1}` }), 5);
      } else if (u.pathname === '/loop') send(302, 'loop', { location: '/loop' });
      else if (u.pathname === '/to-https') send(302, 'moved', { location: `https://127.0.0.1:${u.searchParams.get('port')}/ok` });
      else if (u.pathname === '/echo') send(200, JSON.stringify(entry.last));
      else if (u.pathname === '/gzip') send(200, gzipSync(TEXT), { 'content-encoding': 'gzip' });
      else if (u.pathname === '/deflate') send(200, deflateSync(TEXT), { 'content-encoding': 'deflate' });
      else if (u.pathname === '/br') send(200, brotliCompressSync(TEXT), { 'content-encoding': 'br' });
      else if (u.pathname === '/big') send(200, Buffer.alloc(Number(u.searchParams.get('bytes') ?? 65536), 0x61));
      else if (u.pathname === '/cookies') send(200, 'cookies', { 'set-cookie': ['a=1', 'session=2'] });
      else if (u.pathname === '/slow') setTimeout(() => send(200, 'slow'), Number(u.searchParams.get('ms') ?? 1000));
      else send(404, 'not found');
    });
  };
}

/** The uncompressed text served by /gzip, /deflate and /br. */
export const ZOO_COMPRESSED_TEXT = TEXT;

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.listen(0, '127.0.0.1', () => r());
  });
  return String((s.address() as AddressInfo).port);
}

/** Starts the zoo (certificates included). */
export async function startHttpZoo(): Promise<HttpZoo> {
  const certs = makeTestCerts();
  const seen = new Map<string, { n: number; last?: { method: string; headers: Record<string, string | string[] | undefined>; body: string } }>();
  const h = handler(seen);
  const servers: Server[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const add = <S extends Server>(s: S): S => {
    s.on('connection', (c) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
    s.on('secureConnection', (c) => c.on('error', () => undefined));
    servers.push(s);
    return s;
  };
  const tlsServer = (pair: { key: Buffer; cert: Buffer }, extra: object = {}): Server => add(createHttpsServer({ ...pair, ...extra }, h));
  const [http, h2tls, h2c, tls12, expired, wrongHost, untrusted, reset] = await Promise.all([
    listen(add(createHttpServer(h))),
    listen(add(createSecureServer({ ...certs.good, allowHTTP1: true }, h))),
    listen(add(createH2cServer(h))),
    listen(tlsServer(certs.good, { maxVersion: 'TLSv1.2' })),
    listen(tlsServer(certs.expired)),
    listen(tlsServer(certs.wrongHost)),
    listen(tlsServer(certs.untrusted)),
    listen(add(createNetServer((s) => s.resetAndDestroy()))),
  ]);
  const tmp = createNetServer();
  const refused = await listen(tmp);
  await new Promise((r) => tmp.close(r));
  const base = (p: string, tls = false): string => `${tls ? 'https' : 'http'}://127.0.0.1:${p}`;
  return {
    certs,
    http: base(http),
    h2tls: base(h2tls, true),
    h2c: base(h2c),
    tls12: base(tls12, true),
    expired: base(expired, true),
    wrongHost: base(wrongHost, true),
    untrusted: base(untrusted, true),
    reset: base(reset),
    refused: base(refused),
    hits: (p) => seen.get(p)?.n ?? 0,
    lastRequest: (p) => seen.get(p)?.last,
    async close() {
      for (const c of sockets) c.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      certs.remove();
    },
  };
}
