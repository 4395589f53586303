/**
 * One HTTP request/response on a fresh connection (one hop of an http probe): resolve,
 * TCP connect, TLS with our own verification, then HTTP/1.1 (http1.ts on the socket) or
 * HTTP/2 (node:http2 on the socket: ALPN `h2` over TLS, or h2c with prior knowledge), the
 * body read (decoded, size-limited, kept only when a body regex needs it).
 *
 * Marks (monotonic ns, each phase's end): resolve, connect, tls (= connect without TLS),
 * processing (first response byte for HTTP/1.1, the response HEADERS for HTTP/2: the
 * server's SETTINGS frame is not an answer), transfer (body end).
 */
import * as http2 from 'node:http2';
import { connect as netConnect, Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Clock } from '@probemesh/common';
import { stampConnect } from './dial';
import { Http1ResponseParser, sendHttp1 } from './http1';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { PreparedHttp } from './http-options';
import { resolveAddress, ResolveAllFn } from './target-addr';
import { skipNodeIdentityCopy, tlsConnectOptions, tlsGauges, verifyPeer } from './tls-info';
import { GaugeValue } from './types';
import type { SocketInfo } from '../ebpf/kernel-tcp';

/** Phase names of the http probe, in order. */
export const HTTP_PHASES = ['resolve', 'connect', 'tls', 'processing', 'transfer'] as const;
const RESOLVE = 0;
const CONNECT = 1;
const TLS = 2;
const PROCESSING = 3;
const TRANSFER = 4;

/** Headers HTTP/2 forbids (connection-specific). */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** One request to make. */
export interface HopRequest {
  readonly url: URL;
  readonly method: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Host header / :authority. */
  readonly authority: string;
  readonly body: Buffer | undefined;
}

/** What one hop gave. */
export interface HopResult {
  /** End marks of the 5 phases (undefined = not reached). */
  readonly marks: (bigint | undefined)[];
  /** Last clock reading of the hop. */
  endNs: bigint;
  failure?: { code: FailureCode; message: string };
  status: number;
  /** `HTTP/1.1`, `HTTP/2.0`, '' = no response. */
  protocol: string;
  /** Response headers, lower-case names, every value. */
  headers: Record<string, string[]>;
  body: Buffer | undefined;
  /** Uncompressed body bytes read. */
  bodyLength: number;
  /** Content-Length header, -1 when absent. */
  contentLength: number;
  tls: boolean;
  tlsGauges: GaugeValue[];
  address: string;
  family: number;
  /** The hop's TCP connection, for the kernel (eBPF) join; set once connect was tried. */
  socket?: SocketInfo;
}

function timeoutCode(phase: number): FailureCode {
  if (phase === RESOLVE) return FailureCodes.DNS_TIMEOUT;
  if (phase === CONNECT) return FailureCodes.CONNECT_TIMEOUT;
  return FailureCodes.TIMEOUT;
}

function distinct(h: Record<string, string | string[] | undefined>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':')) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v : [String(v)];
  }
  return out;
}

/** Runs one hop starting at `startNs`; never rejects. */
export async function exchange(req: HopRequest, prep: PreparedHttp, resolveAll: ResolveAllFn, signal: AbortSignal, clock: Clock, startNs: bigint): Promise<HopResult> {
  const out: HopResult = { marks: [undefined, undefined, undefined, undefined, undefined], endNs: startNs, status: 0, protocol: '', headers: {}, body: undefined, bodyLength: 0, contentLength: -1, tls: false, tlsGauges: [], address: '', family: 0 };
  const marks = out.marks;
  const fail = (code: FailureCode, message: string): HopResult => {
    out.failure = { code, message };
    out.endNs = clock.monoNs();
    return out;
  };
  const url = req.url;
  const useTls = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (signal.aborted) return fail(FailureCodes.DNS_TIMEOUT, 'timeout before the request started');
  const r = await resolveAddress(host, prep.opts.preferred_ip_protocol, prep.opts.ip_protocol_fallback, resolveAll, signal);
  if (!r.ok) return fail(signal.aborted ? FailureCodes.DNS_TIMEOUT : r.code, r.message);
  marks[RESOLVE] = r.address === host ? startNs : clock.monoNs();
  out.address = r.address;
  out.family = r.family;
  const port = Number(url.port) || (useTls ? 443 : 80);

  return new Promise<HopResult>((resolve) => {
    let done = false;
    let sock: Socket | undefined;
    let connectStartNs: bigint | undefined;
    let localPort: number | undefined;
    let tlsSock: TLSSocket | undefined;
    let session: http2.ClientHttp2Session | undefined;
    let h1: Http1ResponseParser | undefined;
    const chunks: Buffer[] = [];
    const phaseNow = (): number => {
      const i = marks.findIndex((m) => m === undefined);
      return i < 0 ? TRANSFER : i;
    };
    const finish = (code?: FailureCode, message?: string, endNs?: bigint): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      out.endNs = endNs ?? marks[TRANSFER] ?? clock.monoNs();
      if (code !== undefined) out.failure = { code, message: message ?? code };
      if (prep.keepBody) out.body = Buffer.concat(chunks);
      h1?.stop();
      session?.destroy();
      tlsSock?.destroy();
      sock?.destroy();
      // After destroy(): the kernel saw the close inside [connectStartNs, endMonoNs].
      if (connectStartNs !== undefined) out.socket = { localPort, remoteAddress: r.address, remotePort: port, startMonoNs: connectStartNs, endMonoNs: clock.monoNs() };
      resolve(out);
    };
    const onError = (what: string) => (err: Error): void => {
      const phase = phaseNow();
      finish(failureCodeOf(err, HTTP_PHASES[phase]), `${what} (${HTTP_PHASES[phase]}): ${err.message}`);
    };
    const onAbort = (): void => {
      const phase = phaseNow();
      finish(timeoutCode(phase), `timeout during ${HTTP_PHASES[phase]} of ${url.href}`);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    /** Where body bytes go: decoded when `compression` is set, counted, kept for body regexes, size-limited. */
    const bodySink = (contentLength: string | undefined): { write(chunk: Buffer): void; end(): void } => {
      out.contentLength = contentLength !== undefined && /^\d+$/.test(contentLength) ? Number(contentLength) : -1;
      const limit = prep.opts.body_size_limit;
      const take = (chunk: Buffer): void => {
        if (done) return;
        out.bodyLength += chunk.length;
        if (limit > 0 && out.bodyLength > limit) return finish(FailureCodes.ERROR, `response body exceeds body_size_limit (${limit} bytes)`);
        if (prep.keepBody) chunks.push(chunk);
      };
      const ended = (): void => {
        marks[TRANSFER] = clock.monoNs();
        finish();
      };
      const c = prep.opts.compression;
      if (c !== 'gzip' && c !== 'deflate' && c !== 'br') return { write: take, end: ended };
      const decoder = c === 'gzip' ? createGunzip() : c === 'deflate' ? createInflate() : createBrotliDecompress();
      decoder.on('error', (err) => finish(FailureCodes.ERROR, `decoding the ${c} response body: ${err.message}`));
      decoder.on('data', take);
      decoder.once('end', ended);
      return { write: (chunk) => void decoder.write(chunk), end: () => void decoder.end() };
    };

    const sendH1 = (s: Socket): void => {
      let sink: { write(chunk: Buffer): void; end(): void } | undefined;
      h1 = sendHttp1(
        s,
        { method: req.method, path: `${url.pathname}${url.search}`, host: req.authority, headers: req.headers, body: req.body },
        {
          firstByte: () => (marks[PROCESSING] ??= clock.monoNs()),
          head: (h) => {
            out.status = h.status;
            out.protocol = h.protocol;
            out.headers = h.headers;
            sink = bodySink(h.headers['content-length']?.[0]);
          },
          body: (chunk) => sink!.write(chunk),
          end: () => sink!.end(),
          error: (message, closed) => (closed ? finish(FailureCodes.RESET, `${message} (${HTTP_PHASES[phaseNow()]})`) : finish(FailureCodes.ERROR, `malformed HTTP/1.1 response: ${message}`)),
        },
      );
    };

    const sendH2 = (s: Socket): void => {
      session = http2.connect(`${url.protocol}//${url.host}`, { createConnection: () => s });
      session.on('error', onError('HTTP/2 session'));
      const headers: http2.OutgoingHttpHeaders = { ':method': req.method, ':path': `${url.pathname}${url.search}`, ':authority': req.authority, ':scheme': url.protocol.slice(0, -1) };
      for (const [k, v] of Object.entries(req.headers)) if (!H2_FORBIDDEN.has(k)) headers[k] = v;
      const stream = session.request(headers, { endStream: req.body === undefined });
      stream.on('response', (h) => {
        marks[PROCESSING] ??= clock.monoNs();
        out.status = Number(h[':status']) || 0;
        out.protocol = 'HTTP/2.0';
        out.headers = distinct(h);
        const cl = h['content-length'];
        const sink = bodySink(Array.isArray(cl) ? cl[0] : cl);
        stream.on('data', (chunk: Buffer) => sink.write(chunk));
        stream.once('end', () => sink.end());
      });
      stream.on('error', onError('HTTP/2 stream'));
      if (req.body !== undefined) stream.end(req.body);
    };

    // The connect phase spans the connect() syscall as closely as JS allows (stampConnect,
    // dial.ts); the set-up before it (socket object, Node's deferral by a tick) counts in
    // resolve. Stamped here too in case 'connectionAttempt' is missing (Node < 20.12).
    connectStartNs = clock.monoNs();
    sock = netConnect({ host: r.address, port, family: r.family });
    const stamps = stampConnect(sock, () => clock.monoNs(), (ns) => {
      connectStartNs = ns;
      marks[RESOLVE] = ns;
    });
    sock.on('error', onError('connection'));
    sock.once('connect', () => {
      marks[CONNECT] = stamps.endNs ?? clock.monoNs();
      // Set once connected: passed to connect() it is one more syscall before 'connect'.
      sock!.setNoDelay(true);
      localPort = sock!.localPort;
      if (useTls) return;
      marks[TLS] = marks[CONNECT];
      if (prep.opts.http2_prior_knowledge) sendH2(sock!);
      else sendH1(sock!);
    });
    if (useTls) {
      const alpn = prep.opts.enable_http2 ? ['h2', 'http/1.1'] : ['http/1.1'];
      const t = tlsConnect({ socket: sock, ...tlsConnectOptions(prep.tls, host, alpn) });
      tlsSock = t;
      skipNodeIdentityCopy(t);
      t.on('error', onError('TLS'));
      t.once('secureConnect', () => {
        // Verification is part of the handshake (as in Go).
        const bad = verifyPeer(t, prep.tls, host);
        marks[TLS] = clock.monoNs();
        out.tls = true;
        // Read now: once the connection closes the peer certificate is gone (a few µs land in processing).
        out.tlsGauges = tlsGauges(t, prep.tls);
        if (bad) return finish(bad.code, bad.message, marks[TLS]);
        if (t.alpnProtocol === 'h2') sendH2(t);
        else sendH1(t);
      });
    }
  });
}
