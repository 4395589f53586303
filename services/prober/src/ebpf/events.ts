/**
 * The lines `bpf/probemesh-tcp.bt` prints, parsed. Times are CLOCK_MONOTONIC ns as
 * bigint (a JSON number would lose precision past 2^53 ns ≈ 104 days of uptime, so the
 * JSON lines print them quoted).
 *
 * Finished sockets come as bpftrace's print of a map entry (the program batches them in
 * a map printed every 20 ms), parsed by hand here:
 *   `@done0[SK, SYN]: (SPORT, DPORT, DADDR, EST, FB, END, STATE, SRTT_US, MDEV_US, TOTAL_RETRANS, RTX, SYNRTX, RST)`
 * Ticks and the begin line are JSON objects (`{"e":"tick","t":"T"}`).
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
  /** When the prober was done with the socket (it closed it, or it was reset): the record was written then. */
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
const DONE = '@done';

/** Parses one output line; undefined for anything that is not an event (blank lines, banners). */
export function parseKernelLine(line: string): KernelEvent | undefined {
  const c = line.charCodeAt(0);
  if (c === 64 /* @ */) return line.startsWith(DONE) ? parseDoneLine(line) : undefined;
  if (c !== 123 /* { */) {
    if (line.length === 0) return undefined;
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
    default:
      return undefined;
  }
}

/**
 * `@done0[SK, SYN]: (SPORT, DPORT, DADDR, EST, FB, END, STATE, SRTT_US, MDEV_US,
 * TOTAL_RETRANS, RTX, SYNRTX, RST)`; undefined if any field is not what the program prints.
 * Scanned by hand (no split, no regex): it runs once per probe.
 */
function parseDoneLine(line: string): TcpConnEvent | undefined {
  const last = line.length - 1;
  const open = line.indexOf('[', DONE.length);
  const sep = open < 0 ? -1 : line.indexOf(', ', open);
  const close = sep < 0 ? -1 : line.indexOf(']: (', sep);
  if (close < 0 || line.charCodeAt(last) !== 41 /* ) */) return undefined;
  const synNs = bigAt(line, sep + 2, close);
  if (synNs === undefined) return undefined;
  // Field bounds: FIELD[2k] = start, FIELD[2k+1] = end (exclusive) of field k.
  let pos = close + 4;
  for (let k = 0; k < 13; k++) {
    const end = k < 12 ? line.indexOf(', ', pos) : last;
    if (end < pos) return undefined;
    FIELD[2 * k] = pos;
    FIELD[2 * k + 1] = end;
    pos = end + 2;
  }
  const estNs = bigAt(line, FIELD[6]!, FIELD[7]!);
  const firstByteNs = bigAt(line, FIELD[8]!, FIELD[9]!);
  const endNs = bigAt(line, FIELD[10]!, FIELD[11]!);
  if (estNs === undefined || firstByteNs === undefined || endNs === undefined) return undefined;
  const sport = uintAt(line, 0);
  const dport = uintAt(line, 1);
  const state = uintAt(line, 6);
  const srttRaw = uintAt(line, 7);
  const mdevRaw = uintAt(line, 8);
  const totalRetrans = uintAt(line, 9);
  const retransmits = uintAt(line, 10);
  const synRetransmits = uintAt(line, 11);
  const resets = uintAt(line, 12);
  if ((sport | dport | state | srttRaw | mdevRaw | totalRetrans | retransmits | synRetransmits | resets) < 0 || FIELD[5]! <= FIELD[4]!) return undefined;
  const daddr = normalizeAddress(line.slice(FIELD[4], FIELD[5]));
  return { e: 'tcp', sport, dport, daddr, synNs, estNs, firstByteNs, endNs, state, srttRaw, mdevRaw, totalRetrans, retransmits, synRetransmits, resets };
}

const FIELD = new Int32Array(26);

/** Field k of the line being parsed as an unsigned integer below 2^31, or -1 if it is not one. */
function uintAt(line: string, k: number): number {
  const from = FIELD[2 * k]!;
  const end = FIELD[2 * k + 1]!;
  if (end <= from || end - from > 9) return -1;
  let v = 0;
  for (let i = from; i < end; i++) {
    const d = line.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** line[from, end) as an unsigned bigint, or undefined if it is not all digits. */
function bigAt(line: string, from: number, end: number): bigint | undefined {
  if (end <= from || end - from > 20) return undefined;
  let v = 0;
  for (let i = from; i < end; i++) {
    const d = line.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  // Exact as a double up to 15 digits (< 2^53); past that (104 days of uptime in ns) read it as text.
  return end - from <= 15 ? BigInt(v) : BigInt(line.slice(from, end));
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
