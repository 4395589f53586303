/**
 * A TLS handshake over an already connected socket, for the tcp (`tls: true` and
 * STARTTLS) and dns (`dns_over_tls`) probes, on the shared `tls_config` support of
 * tls-info.ts (own verification so the gauges survive a bad certificate).
 */
import { Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { FailureCode, failureCodeOf } from './failure';
import { PreparedTls, skipNodeIdentityCopy, tlsConnectOptions, tlsGauges, verifyPeer } from './tls-info';
import { GaugeValue } from './types';

/** A handshake's result: the TLS socket (and gauges) or why it failed. `code` 'timeout' = aborted. */
export type Handshake = { ok: true; socket: TLSSocket; gauges: GaugeValue[] } | { ok: false; code: FailureCode; message: string; gauges: GaugeValue[] };

/**
 * Runs a TLS handshake over `socket` (`host` = the target host, for SNI and the name
 * check) and verifies the peer; resolves, never rejects. `alpn` = protocols to offer. `head` = bytes already read
 * from the socket that belong to the TLS stream.
 */
export function handshake(socket: Socket, host: string, tls: PreparedTls, signal: AbortSignal, head?: Buffer, alpn?: string[]): Promise<Handshake> {
  return new Promise<Handshake>((resolve) => {
    if (head && head.length > 0) socket.unshift(head);
    const s = tlsConnect({ ...tlsConnectOptions(tls, host, alpn), socket });
    skipNodeIdentityCopy(s);
    const done = (r: Handshake): void => {
      s.removeListener('secureConnect', onOk);
      s.removeListener('error', onErr);
      signal.removeEventListener('abort', onAbort);
      if (!r.ok) s.destroy();
      resolve(r);
    };
    const onOk = (): void => {
      const gauges = tlsGauges(s, tls);
      const bad = verifyPeer(s, tls, host);
      done(bad ? { ok: false, code: bad.code, message: `TLS: ${bad.message}`, gauges } : { ok: true, socket: s, gauges });
    };
    const onErr = (err: Error): void => done({ ok: false, code: failureCodeOf(err, 'tls'), message: `TLS handshake: ${err.message}`, gauges: [] });
    const onAbort = (): void => done({ ok: false, code: 'timeout', message: 'timeout during the TLS handshake', gauges: [] });
    s.once('secureConnect', onOk);
    s.once('error', onErr);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
