/**
 * Joins the kernel's per-socket lines to the probes that opened those sockets.
 *
 * Key: peer address + peer port, then the local port (when the probe knows it) and the
 * probe's monotonic window (the socket entered SYN_SENT inside it). A probe without a
 * local port (Node saw no 'connect': refused, unreachable, timed out connecting) only
 * takes a socket that never reached ESTABLISHED, the one whose SYN came soonest after the
 * probe's start: otherwise, on a lagging event loop, a probe that timed out while its
 * connect completed in the kernel took another probe's socket to the same peer (found
 * with 800 ms timeouts under CPU starvation). A line may arrive
 * before or after the probe asks: lines wait in a bounded store, probes wait (without a
 * timer each) until their line comes or a watermark tick passes their end — then the
 * kernel has nothing for them and they get `undefined`.
 */
import { normalizeAddress, TcpConnEvent } from './events';
import { KernelTcp, kernelTcpOf, SocketInfo } from './kernel-tcp';

/** Options of a {@link KernelJoiner}. */
export interface KernelJoinerOptions {
  /** Most socket lines held unclaimed; the oldest go first. @default 65536 */
  maxEvents?: number;
  /** Unclaimed lines older than this (by the watermark) are dropped, ns. @default 60 s */
  maxAgeNs?: bigint;
  /** A probe gives up once a tick is this far past its end, ns. @default 5 ms */
  graceNs?: bigint;
  /** Most probes waiting at once; beyond it a join answers undefined at once. @default 65536 */
  maxWaiters?: number;
}

interface Waiter {
  readonly info: SocketInfo;
  readonly key: string;
  readonly deadline: bigint;
  done: boolean;
  resolve(k: KernelTcp | undefined): void;
}

/** Counts of what the joiner did (exported as metrics). */
export interface JoinCounts {
  matched: number;
  unmatched: number;
  evicted: number;
}

/** See the module comment. */
export class KernelJoiner {
  private readonly events = new Map<string, TcpConnEvent[]>();
  private readonly order: { key: string; ev: TcpConnEvent }[] = [];
  private orderHead = 0;
  private held = 0;
  private readonly waitersByKey = new Map<string, Waiter[]>();
  private readonly waiterQueue: Waiter[] = [];
  private waiterHead = 0;
  private waiting = 0;
  private watermark = 0n;
  private readonly maxEvents: number;
  private readonly maxAgeNs: bigint;
  private readonly graceNs: bigint;
  private readonly maxWaiters: number;
  /** What happened so far. */
  readonly counts: JoinCounts = { matched: 0, unmatched: 0, evicted: 0 };

  constructor(opts: KernelJoinerOptions = {}) {
    this.maxEvents = opts.maxEvents ?? 65536;
    this.maxAgeNs = opts.maxAgeNs ?? 60_000_000_000n;
    this.graceNs = opts.graceNs ?? 5_000_000n;
    this.maxWaiters = opts.maxWaiters ?? 65536;
  }

  /** Socket lines held now. */
  get heldEvents(): number {
    return this.held;
  }

  /** Probes waiting now. */
  get waitingProbes(): number {
    return this.waiting;
  }

  /** A socket line from the kernel. */
  addEvent(ev: TcpConnEvent): void {
    const key = peerKey(ev.daddr, ev.dport);
    const ws = this.waitersByKey.get(key);
    if (ws) {
      // The probe on the socket's local port, else the port-less probe that started last before the SYN.
      let best = -1;
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]!;
        if (w.done || !matches(w.info, ev)) continue;
        if (hasPort(w.info)) {
          best = i;
          break;
        }
        if (best < 0 || w.info.startMonoNs > ws[best]!.info.startMonoNs) best = i;
      }
      if (best >= 0) {
        const w = ws[best]!;
        ws.splice(best, 1);
        if (ws.length === 0) this.waitersByKey.delete(key);
        this.settle(w, kernelTcpOf(ev));
        return;
      }
    }
    let list = this.events.get(key);
    if (!list) this.events.set(key, (list = []));
    list.push(ev);
    this.order.push({ key, ev });
    this.held++;
    while (this.held > this.maxEvents || this.order.length - this.orderHead > 2 * this.maxEvents) this.evictOldest();
  }

  /** A watermark tick: gives up on probes that ended before it, ages out old lines. */
  tick(t: bigint): void {
    if (t > this.watermark) this.watermark = t;
    while (this.waiterHead < this.waiterQueue.length) {
      const w = this.waiterQueue[this.waiterHead]!;
      if (!w.done && w.deadline > t) break;
      this.waiterHead++;
      if (!w.done) {
        this.removeWaiter(w);
        this.settle(w, undefined);
      }
    }
    this.compactWaiters();
    while (this.orderHead < this.order.length) {
      const head = this.order[this.orderHead]!;
      if (this.isClaimed(head) || head.ev.endNs + this.maxAgeNs < t) this.evictOldest();
      else break;
    }
  }

  /**
   * The kernel's figures for the probe's socket: at once if its line is here, else when
   * it comes, or `undefined` once a tick passes `info.endMonoNs` + grace without it.
   */
  join(info: SocketInfo): Promise<KernelTcp | undefined> {
    const key = peerKey(normalizeAddress(info.remoteAddress), info.remotePort);
    const list = this.events.get(key);
    if (list) {
      // The line on the probe's local port, else (no port) the socket whose SYN came soonest after the start.
      const ported = hasPort(info);
      let best = -1;
      for (let i = 0; i < list.length; i++) {
        const ev = list[i]!;
        if (!matches(info, ev)) continue;
        if (ported) {
          best = i;
          break;
        }
        if (best < 0 || ev.synNs < list[best]!.synNs) best = i;
      }
      if (best >= 0) {
        const ev = list[best]!;
        list.splice(best, 1);
        if (list.length === 0) this.events.delete(key);
        this.held--;
        this.counts.matched++;
        return Promise.resolve(kernelTcpOf(ev));
      }
    }
    if (this.waiting >= this.maxWaiters) {
      this.counts.unmatched++;
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const w: Waiter = { info, key, deadline: info.endMonoNs + this.graceNs, done: false, resolve };
      let ws = this.waitersByKey.get(key);
      if (!ws) this.waitersByKey.set(key, (ws = []));
      ws.push(w);
      this.waiterQueue.push(w);
      this.waiting++;
    });
  }

  /**
   * Answers `undefined` to every probe whose deadline (end + grace) is before `beforeNs`
   * (monotonic ns) — for when ticks stop coming. Returns how many it gave up on.
   */
  expire(beforeNs: bigint): number {
    let n = 0;
    while (this.waiterHead < this.waiterQueue.length) {
      const w = this.waiterQueue[this.waiterHead]!;
      if (!w.done && w.deadline >= beforeNs) break;
      this.waiterHead++;
      if (!w.done) {
        this.removeWaiter(w);
        this.settle(w, undefined);
        n++;
      }
    }
    this.compactWaiters();
    return n;
  }

  /** Answers every waiting probe with `undefined` (the event source stopped). */
  release(): void {
    for (let i = this.waiterHead; i < this.waiterQueue.length; i++) {
      const w = this.waiterQueue[i]!;
      if (!w.done) this.settle(w, undefined);
    }
    this.waiterQueue.length = 0;
    this.waiterHead = 0;
    this.waitersByKey.clear();
  }

  private settle(w: Waiter, k: KernelTcp | undefined): void {
    w.done = true;
    this.waiting--;
    if (k) this.counts.matched++;
    else this.counts.unmatched++;
    w.resolve(k);
  }

  private removeWaiter(w: Waiter): void {
    const ws = this.waitersByKey.get(w.key);
    if (!ws) return;
    const i = ws.indexOf(w);
    if (i >= 0) ws.splice(i, 1);
    if (ws.length === 0) this.waitersByKey.delete(w.key);
  }

  private compactWaiters(): void {
    if (this.waiterHead > 1024 && this.waiterHead * 2 > this.waiterQueue.length) {
      this.waiterQueue.splice(0, this.waiterHead);
      this.waiterHead = 0;
    }
  }

  /** Claimed lines stay in `order` until they reach its head; they are skipped there. */
  private isClaimed(entry: { key: string; ev: TcpConnEvent }): boolean {
    const list = this.events.get(entry.key);
    return !list || !list.includes(entry.ev);
  }

  private evictOldest(): void {
    const head = this.order[this.orderHead];
    if (!head) return;
    this.orderHead++;
    const list = this.events.get(head.key);
    const i = list ? list.indexOf(head.ev) : -1;
    if (list && i >= 0) {
      list.splice(i, 1);
      if (list.length === 0) this.events.delete(head.key);
      this.held--;
      this.counts.evicted++;
    }
    if (this.orderHead > 1024 && this.orderHead * 2 > this.order.length) {
      this.order.splice(0, this.orderHead);
      this.orderHead = 0;
    }
  }
}

function peerKey(addr: string, port: number): string {
  return `${addr}|${port}`;
}

function hasPort(info: SocketInfo): boolean {
  return info.localPort !== undefined && info.localPort !== 0;
}

/**
 * The socket entered SYN_SENT inside the probe's window, on the probe's local port if
 * known; without one (Node never saw the connection established) only a socket the kernel
 * never established either.
 */
function matches(info: SocketInfo, ev: TcpConnEvent): boolean {
  if (hasPort(info) ? ev.sport !== info.localPort : ev.estNs !== 0n) return false;
  return ev.synNs >= info.startMonoNs && ev.synNs <= info.endMonoNs;
}
