/**
 * The lines `bpf/probemesh-tcp.bt` prints, parsed. Times are CLOCK_MONOTONIC ns as
 * bigint (they are printed quoted: a JSON number loses precision past 2^53 ns ≈ 104 days
 * of uptime).
 */

/** One TCP connection of the prober, as the kernel saw it (printed once per socket). */
export interface TcpConnEvent {
  readonly e: 'tcp';
  /** Local port (0 if the connect failed before a port was bound). */
  readonly sport: number;
  /** Peer port. */
  readonly dport: number;
  /** Peer address, IPv4 in dotted form (the `::ffff:` mapping removed). */
  readonly daddr: string;
  /** Entered SYN_SENT (connect() called). */
  readonly synNs: bigint;
  /** Entered ESTABLISHED (SYN-ACK received); 0n = never. */
  readonly estNs: bigint;
  /** First data segment from the peer; 0n = none. */
  readonly firstByteNs: bigint;
  /** When the line was printed (the prober closed the socket, or it was reset). */
  readonly endNs: bigint;
  /** TCP state that triggered the line (4 FIN_WAIT1, 9 LAST_ACK, 7 CLOSE). */
  readonly state: number;
  /** tcp_sock.srtt_us (µs << 3). */
  readonly srttRaw: number;
  /** tcp_sock.mdev_us (µs << 2). */
  readonly mdevRaw: number;
  /** tcp_sock.total_retrans. */
  readonly totalRetrans: number;
  /** Retransmits seen by tcp:tcp_retransmit_skb. */
  readonly retransmits: number;
  /** Of those, sent in SYN_SENT. */
  readonly synRetransmits: number;
  /** Resets received plus sent. */
  readonly resets: number;
}

/** Watermark: every socket line of a socket finished before `t` was printed before it. */
export interface TickEvent {
  readonly e: 'tick';
  readonly t: bigint;
}

/** A parsed line of the program. */
export type KernelEvent = TcpConnEvent | TickEvent | { readonly e: 'begin'; readonly t: bigint } | { readonly e: 'lost'; readonly count: number };

/** TCP state numbers (include/net/tcp_states.h). */
export const TcpState = { ESTABLISHED: 1, SYN_SENT: 2, FIN_WAIT1: 4, CLOSE: 7, LAST_ACK: 9 } as const;

const LOST = /Lost (\d+) events/;

/** Parses one output line; undefined for anything that is not an event (blank lines, banners). */
export function parseKernelLine(line: string): KernelEvent | undefined {
  if (line.charCodeAt(0) !== 123 /* { */) {
    const m = LOST.exec(line);
    return m ? { e: 'lost', count: Number(m[1]) } : undefined;
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  switch (o.e) {
    case 'tick':
    case 'begin':
      return { e: o.e, t: big(o.t) };
    case 'tcp':
      return {
        e: 'tcp',
        sport: num(o.sport),
        dport: num(o.dport),
        daddr: normalizeAddress(String(o.daddr ?? '')),
        synNs: big(o.syn),
        estNs: big(o.est),
        firstByteNs: big(o.fb),
        endNs: big(o.end),
        state: num(o.state),
        srttRaw: num(o.srtt_us),
        mdevRaw: num(o.mdev_us),
        totalRetrans: num(o.total_retrans),
        retransmits: num(o.rtx),
        synRetransmits: num(o.synrtx),
        resets: num(o.rst),
      };
    default:
      return undefined;
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; other addresses lower-cased as they are. */
export function normalizeAddress(addr: string): string {
  const a = addr.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function big(v: unknown): bigint {
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return 0n;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
