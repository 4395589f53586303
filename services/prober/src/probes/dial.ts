/**
 * A TCP dial for the non-HTTP probes (tcp, dns over TCP, thrift): one fresh connection,
 * optional source address, aborted by the probe's signal; failures become codes.
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

/** A connected socket, or why there is none. */
export type Dialed = { ok: true; socket: Socket } | { ok: false; code: FailureCode; message: string };

/** Connects; resolves (never rejects) when connected, failed or `signal` aborted (`connect_timeout`). */
export function dialTcp(t: DialTarget, signal: AbortSignal): Promise<Dialed> {
  return new Promise<Dialed>((resolve) => {
    if (signal.aborted) return resolve({ ok: false, code: FailureCodes.CONNECT_TIMEOUT, message: `connect to ${t.address}:${t.port} timed out` });
    const socket = connect({ host: t.address, port: t.port, family: t.family, localAddress: t.sourceIp, noDelay: true });
    const done = (r: Dialed): void => {
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onConnect = (): void => done({ ok: true, socket });
    const onError = (err: Error): void => done({ ok: false, code: failureCodeOf(err, 'connect'), message: `connect to ${t.address}:${t.port}: ${err.message}` });
    const onAbort = (): void => done({ ok: false, code: FailureCodes.CONNECT_TIMEOUT, message: `connect to ${t.address}:${t.port} timed out` });
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
