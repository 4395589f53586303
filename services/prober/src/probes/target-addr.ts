/**
 * Target addresses of the non-HTTP probes (`host:port`, `[v6]:port`, bare host) and the
 * blackbox `preferred_ip_protocol` / `ip_protocol_fallback` resolution shared by dns,
 * tcp, icmp, grpc and thrift.
 */
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { bool, str } from '@probemesh/common';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { GaugeValue } from './types';

/** A parsed `host[:port]` target. */
export interface HostPort {
  /** Host name or IP literal (without brackets). */
  readonly host: string;
  /** Port (the default when the target has none). */
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port`, a bare host / IPv4 / IPv6 literal (with `defaultPort`),
 * or a URL-ish `scheme://host:port/...`. Returns undefined when it is not an address.
 */
export function parseHostPort(target: string, defaultPort?: number): HostPort | undefined {
  let t = target.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(t);
  if (scheme) t = t.slice(scheme[0].length).replace(/\/.*$/, '');
  if (t === '') return undefined;
  const portOf = (p: string | undefined): number | undefined => {
    if (p === undefined || p === '') return defaultPort;
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) return undefined;
    return Number(p);
  };
  let host: string;
  let port: number | undefined;
  const v6 = /^\[([0-9a-fA-F:.%\w]+)\](?::(\d*))?$/.exec(t);
  if (v6) {
    host = v6[1]!;
    port = portOf(v6[2]);
  } else if (isIP(t) === 6) {
    host = t;
    port = defaultPort;
  } else {
    const i = t.lastIndexOf(':');
    host = i < 0 ? t : t.slice(0, i);
    port = portOf(i < 0 ? undefined : t.slice(i + 1));
  }
  if (port === undefined || host === '' || /[\s/]/.test(host)) return undefined;
  return { host, port };
}

/** blackbox `preferred_ip_protocol` schema (ip4 | ip6). */
export const preferredIpProtocol = (def: 'ip4' | 'ip6' = 'ip6') =>
  str({ oneOf: ['ip4', 'ip6'], default: def, doc: `IP protocol tried first when the target is a name (blackbox). @default "${def}"` });
/** blackbox `ip_protocol_fallback` schema. */
export const ipProtocolFallback = () => bool({ default: true, doc: 'Use the other IP protocol when the preferred one has no address. @default true' });

/** Resolves a name to all its addresses; injectable so tests need no DNS. */
export type ResolveAllFn = (hostname: string, signal: AbortSignal) => Promise<{ address: string; family: number }[]>;

/** The system resolver (getaddrinfo), all addresses. */
export const systemResolveAll: ResolveAllFn = async (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** An address chosen for a target, or why none could be. */
export type Resolved = { ok: true; address: string; family: 4 | 6 } | { ok: false; code: FailureCode; message: string };

/**
 * Picks the target's address like blackbox `chooseProtocol`: IP literals as they are,
 * names resolved and the preferred family taken first, the other one only with
 * `fallback`.
 */
export async function resolveAddress(host: string, preferred: string, fallback: boolean, resolveAll: ResolveAllFn, signal: AbortSignal): Promise<Resolved> {
  const fam = isIP(host);
  if (fam === 4 || fam === 6) return { ok: true, address: host, family: fam };
  let all: { address: string; family: number }[];
  try {
    all = await new Promise((resolve, reject) => {
      const onAbort = (): void => reject(Object.assign(new Error('DNS lookup timed out'), { code: 'ETIMEOUT' }));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      resolveAll(host, signal).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  } catch (err) {
    const code = failureCodeOf(err);
    const dnsCode = code === FailureCodes.DNS_NXDOMAIN || code === FailureCodes.DNS_TIMEOUT ? code : FailureCodes.DNS_ERROR;
    return { ok: false, code: dnsCode, message: `DNS lookup of ${host} failed: ${(err as Error).message}` };
  }
  const want = preferred === 'ip4' ? 4 : 6;
  const pick = all.find((a) => a.family === want) ?? (fallback ? all[0] : undefined);
  if (!pick) return { ok: false, code: FailureCodes.DNS_NXDOMAIN, message: `${host} has no ${preferred} address (ip_protocol_fallback is false)` };
  return { ok: true, address: pick.address, family: pick.family === 6 ? 6 : 4 };
}

/** Abort reason-independent promise race: rejects with `onAbort()` when `signal` aborts. */
export function untilAbort<T>(p: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** Adapts a single-address lookup (`ProbeDeps.lookup`) to {@link ResolveAllFn}; undefined stays undefined. */
export function fromLookup(lookup?: (hostname: string, signal: AbortSignal) => Promise<{ address: string; family: number }>): ResolveAllFn | undefined {
  return lookup ? async (h, s) => [await lookup(h, s)] : undefined;
}

/** blackbox's probe_ip_addr_hash: FNV-1a (32 bit) of the address bytes (4 for IPv4, 16 for IPv6). */
export function ipAddrHash(address: string): number {
  const bytes = address.includes(':') ? ipv6Bytes(address) : address.split('.').map(Number);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function ipv6Bytes(a: string): number[] {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const parse = (s: string | undefined): number[] => (s ? s.split(':').map((x) => parseInt(x, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return groups.flatMap((g) => [(g >> 8) & 0xff, g & 0xff]);
}

/** blackbox's `probe_ip_protocol` and `probe_ip_addr_hash` of the address a probe used. */
export function addressGauges(addr: { address: string; family: number }): GaugeValue[] {
  return [
    { name: 'probe_ip_protocol', value: addr.family },
    { name: 'probe_ip_addr_hash', value: ipAddrHash(addr.address) },
  ];
}
