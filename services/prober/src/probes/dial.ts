/**
 * A TCP dial for the non-HTTP probes (tcp, dns over TCP, thrift): one fresh connection,
 * optional source address, aborted by the probe's signal; failures become codes. Also
 * {@link stampConnect}, which times a connect as closely around the syscall as JS allows
 * (used by the http probe too).
 */
import { connect, Socket } from 'node:net';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';

/** Where to connect. */
export interface DialTarget {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  /** Local address to bind (blackbox `source_ip_address`). */
  readonly sourceIp?: string;
}

/**
 * A connected socket, or why there is none. With a clock (`now`), `startNs` / `connectedNs`
 * are the {@link stampConnect} marks (undefined without one).
 */
export type Dialed = { ok: true; socket: Socket; startNs?: bigint; connectedNs?: bigint } | { ok: false; code: FailureCode; message: string };

/** Marks of one connect, see {@link stampConnect}. */
export interface ConnectStamps {
  /** Read just before the handle's connect (socket() + connect() syscalls). */
  startNs: bigint | undefined;
  /** Read when the completed connect reaches JS (before Node's own 'connect' handling). */
  endNs: bigint | undefined;
}

/**
 * Times `sock`'s connect the way a C timer around a blocking connect() would, as far as JS
 * allows; call it right after `net.connect()`. Node defers the syscall by a tick and builds
 * the socket object first; 'connectionAttempt' is emitted synchronously just before the
 * handle's connect, so the start is read there (`onStart` gets it). The end is read in the
 * handle request's completion callback, before Node's afterConnect runs (which sets socket
 * options and emits 'connect': ~10–20 µs later, measured). That callback is reached through
 * Node internals (`_handle.connect(req, …)`, `req.oncomplete`); where they differ, nothing is
 * wrapped and `endNs` stays undefined: read the clock in the first 'connect' listener then.
 */
export function stampConnect(sock: Socket, now: () => bigint, onStart?: (ns: bigint) => void): ConnectStamps {
  const st: ConnectStamps = { startNs: undefined, endNs: undefined };
  sock.once('connectionAttempt', () => {
    const h = (sock as unknown as { _handle?: { connect?: (req: unknown, ...rest: unknown[]) => unknown } })._handle;
    const original = h?.connect;
    if (h && typeof original === 'function' && !Object.prototype.hasOwnProperty.call(h, 'connect')) {
      h.connect = function (this: unknown, req: unknown, ...rest: unknown[]): unknown {
        delete h.connect;
        const r = req as { oncomplete?: (status: number, ...a: unknown[]) => unknown } | undefined;
        const done = r?.oncomplete;
        if (r && typeof done === 'function') {
          r.oncomplete = function (this: unknown, status: number, ...a: unknown[]): unknown {
            if (status === 0) st.endNs = now();
            return done.call(this, status, ...a);
          };
        }
        return original.call(this, req, ...rest);
      };
    }
    st.startNs = now();
    onStart?.(st.startNs);
  });
  return st;
}

/**
 * Connects; resolves (never rejects) when connected, failed or `signal` aborted
 * (`connect_timeout`). With `now`, the result carries the connect's marks.
 */
export function dialTcp(t: DialTarget, signal: AbortSignal, now?: () => bigint): Promise<Dialed> {
  return new Promise<Dialed>((resolve) => {
    if (signal.aborted) return resolve({ ok: false, code: FailureCodes.CONNECT_TIMEOUT, message: `connect to ${t.address}:${t.port} timed out` });
    // TCP_NODELAY is set once connected: passed to connect() it is one more syscall before 'connect'.
    const socket = connect({ host: t.address, port: t.port, family: t.family, localAddress: t.sourceIp });
    const stamps = now ? stampConnect(socket, now) : undefined;
    const done = (r: Dialed): void => {
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onConnect = (): void => {
      const connectedNs = stamps ? stamps.endNs ?? now!() : undefined;
      socket.setNoDelay(true);
      done({ ok: true, socket, startNs: stamps?.startNs, connectedNs });
    };
    const onError = (err: Error): void => done({ ok: false, code: failureCodeOf(err, 'connect'), message: `connect to ${t.address}:${t.port}: ${err.message}` });
    const onAbort = (): void => done({ ok: false, code: FailureCodes.CONNECT_TIMEOUT, message: `connect to ${t.address}:${t.port} timed out` });
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
