/** What a probe carries from the kernel (ProbeResult.kernel), and how it is derived. */
import type { TcpConnEvent } from './events';

/** The kernel's view of a probe's TCP connection (proto `KernelTcp`). */
export interface KernelTcp {
  /** SYN sent → ESTABLISHED, ns (SYN retransmits included); 0n if never established. */
  readonly connectNs: bigint;
  /** ESTABLISHED → first data segment from the peer, ns; 0n = none. */
  readonly firstByteNs: bigint;
  /** Smoothed RTT when the prober closed the socket, µs (0 if never established). */
  readonly srttUs: number;
  /** RTT variance (mdev) at the same moment, µs. */
  readonly rttvarUs: number;
  /** Retransmitted segments, SYNs included. */
  readonly retransmits: number;
  /** Of those, SYN retransmits. */
  readonly synRetransmits: number;
  /** Resets received plus sent. */
  readonly resets: number;
  /** Local port of the connection. */
  readonly localPort: number;
}

/** Where and when a probe's socket talked: the join key (set by probes that open TCP). */
export interface SocketInfo {
  /** Local port, when known (Node leaves it undefined after ECONNREFUSED). */
  readonly localPort?: number;
  /** Peer address as connected to (IP literal). */
  readonly remoteAddress: string;
  /** Peer port. */
  readonly remotePort: number;
  /** Monotonic ns read before connect() was called. */
  readonly startMonoNs: bigint;
  /** Monotonic ns read after the probe destroyed the socket. */
  readonly endMonoNs: bigint;
}

/** Derives the per-probe figures from the kernel's line for the socket. */
export function kernelTcpOf(ev: TcpConnEvent): KernelTcp {
  const established = ev.estNs > 0n;
  return {
    connectNs: established ? ev.estNs - ev.synNs : 0n,
    firstByteNs: established && ev.firstByteNs > 0n ? ev.firstByteNs - ev.estNs : 0n,
    srttUs: established ? ev.srttRaw >>> 3 : 0,
    rttvarUs: established ? ev.mdevRaw >>> 2 : 0,
    retransmits: Math.max(ev.retransmits, ev.totalRetrans),
    synRetransmits: ev.synRetransmits,
    resets: ev.resets,
    localPort: ev.sport,
  };
}

/**
 * A short diagnosis naming what the kernel saw, for failure messages and logs
 * ('' when there is nothing to say): e.g. a ~1 s connect caused by a SYN retransmit.
 */
export function kernelNote(k: KernelTcp): string {
  const notes: string[] = [];
  if (k.synRetransmits > 0) {
    notes.push(`${k.synRetransmits} SYN retransmit${k.synRetransmits > 1 ? 's' : ''} (SYN or SYN-ACK lost; each adds the 1 s+ SYN timeout)` + (k.connectNs > 0n ? `, kernel connect ${(Number(k.connectNs) / 1e6).toFixed(1)}ms` : ', never established'));
  }
  const dataRtx = k.retransmits - k.synRetransmits;
  if (dataRtx > 0) notes.push(`${dataRtx} data retransmit${dataRtx > 1 ? 's' : ''}`);
  if (k.resets > 0) notes.push(`${k.resets} reset${k.resets > 1 ? 's' : ''}`);
  return notes.length ? `kernel: ${notes.join(', ')}` : '';
}

/** The proto form (ProbeResult.kernel) of {@link KernelTcp}. */
export function kernelTcpProto(k: KernelTcp): { connectNs: number; firstByteNs: number; srttUs: number; rttvarUs: number; retransmits: number; synRetransmits: number; resets: number; localPort: number } {
  return {
    connectNs: Number(k.connectNs),
    firstByteNs: Number(k.firstByteNs),
    srttUs: k.srttUs,
    rttvarUs: k.rttvarUs,
    retransmits: k.retransmits,
    synRetransmits: k.synRetransmits,
    resets: k.resets,
    localPort: k.localPort,
  };
}
