/**
 * Runs the probes of thousands of targets from ONE timer: a min-heap of due times (and
 * probe deadlines) and a single timeout armed at the earliest of them.
 *
 * Each target runs on the slots `k * interval + offset` of the realtime clock (mapped
 * to the monotonic clock once, at construction), with `offset = hash(target id) mod
 * interval`: probes are spread over the interval, a restart or a reassignment keeps a
 * target's phase (no thundering herd), and probers holding the same target agree on it.
 *
 * At most `maxConcurrency` probes run at once; a due probe without a free slot waits in
 * a FIFO and starts late (counted as late, its lag observed) — never silently skipped.
 * A slot whose previous probe of the same target is still waiting or running, or that
 * passed entirely while the loop was stalled, is counted as missed.
 */
import { createHash } from 'node:crypto';
import { Clock, Logger } from '@probemesh/common';
import { MinHeap } from './heap';
import { systemTimers, TimerHandle, Timers } from './timers';

/** A target as the scheduler runs it. */
export interface ScheduledTarget {
  /** Target id (stable; the schedule key). */
  readonly id: string;
  /** What to probe. */
  readonly url: string;
  /** Probe module name. */
  readonly module: string;
  /** Time between probes in ms (> timeoutMs). */
  readonly intervalMs: number;
  /** Probe timeout in ms. */
  readonly timeoutMs: number;
  /** The target's own labels. */
  readonly labels: Readonly<Record<string, string>>;
}

/** One probe run handed to the runner. */
export interface ProbeRun {
  /** The target (its current definition). */
  readonly target: ScheduledTarget;
  /** Aborted at start + timeoutMs (or on a forced stop). */
  readonly signal: AbortSignal;
  /** Monotonic time the probe was due. */
  readonly dueMonoNs: bigint;
  /** Monotonic time the probe was started (>= due). */
  readonly startMonoNs: bigint;
}

/** Runs one probe; the scheduler waits for the promise to count concurrency. */
export type ProbeRunner = (run: ProbeRun) => Promise<void>;

/** Hooks for metrics. */
export interface SchedulerObserver {
  /** Scheduler lag (start − due) of a started probe, in seconds. */
  lag?(seconds: number): void;
  /** A due probe had to wait for a concurrency slot. */
  late?(): void;
  /** `count` slots of a target were not run (previous run still pending, or loop stalled). */
  missed?(count: number): void;
  /** The number of running probes changed. */
  inFlight?(count: number): void;
}

/** Scheduler dependencies and limits. */
export interface SchedulerOptions {
  /** Most probes running at once (>= 1). */
  maxConcurrency: number;
  /** Time source; all scheduling is on `monoNs`. */
  clock: Clock;
  /** Timer source. @default Node's timers */
  timers?: Timers;
  /** Metric hooks. */
  observer?: SchedulerObserver;
  /** Logger. */
  log?: Logger;
}

interface Entry {
  target: ScheduledTarget;
  intervalNs: bigint;
  offsetNs: bigint;
  nextDueNs: bigint;
  gen: number;
  state: 'idle' | 'queued' | 'running';
  queuedDueNs: bigint;
  removed: boolean;
}

interface Run {
  controller: AbortController;
  done: boolean;
}

type HeapItem = { atNs: bigint; seq: number; kind: 'due'; entry: Entry; gen: number } | { atNs: bigint; seq: number; kind: 'deadline'; run: Run };

/** The phase offset of a target within its interval: hash(id) mod interval. */
export function phaseOffsetNs(id: string, intervalNs: bigint): bigint {
  const h = createHash('sha256').update(id).digest();
  return h.readBigUInt64BE(0) % intervalNs;
}

const MS = 1_000_000n;

/** The probe scheduler of one prober. */
export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly heap = new MinHeap<HeapItem>((a, b) => a.atNs < b.atNs || (a.atNs === b.atNs && a.seq < b.seq));
  private readonly ready: Entry[] = [];
  private readyHead = 0;
  private readonly running = new Set<Run>();
  private readonly timers: Timers;
  /** realtime − monotonic, fixed for the scheduler's life so slots never jump. */
  private readonly realOffsetNs: bigint;
  private seq = 0;
  private timer: TimerHandle | undefined;
  private armedAtNs: bigint | undefined;
  private stopping = false;
  private ticking = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly runner: ProbeRunner, private readonly opts: SchedulerOptions) {
    if (!(opts.maxConcurrency >= 1)) throw new RangeError('maxConcurrency must be >= 1');
    this.timers = opts.timers ?? systemTimers;
    this.realOffsetNs = opts.clock.nowNs() - opts.clock.monoNs();
  }

  /** Number of scheduled targets. */
  get size(): number {
    return this.entries.size;
  }

  /** Number of probes running now. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Number of due probes waiting for a concurrency slot. */
  get waiting(): number {
    let n = 0;
    for (let i = this.readyHead; i < this.ready.length; i++) if (!this.ready[i]!.removed) n++;
    return n;
  }

  /** Monotonic time the target's next probe is due (undefined if not scheduled). */
  nextDueNs(id: string): bigint | undefined {
    return this.entries.get(id)?.nextDueNs;
  }

  /**
   * Replaces the target set: new targets get their slot, removed ones stop (a running
   * probe of a removed target finishes), kept ones keep their schedule (a changed
   * interval re-slots the target; other changes apply from the next probe).
   */
  setTargets(targets: readonly ScheduledTarget[]): void {
    if (this.stopping) return;
    const now = this.opts.clock.monoNs();
    const seen = new Set<string>();
    for (const t of targets) {
      if (seen.has(t.id)) continue;
      seen.add(t.id);
      const intervalNs = BigInt(Math.max(1, Math.round(t.intervalMs))) * MS;
      const e = this.entries.get(t.id);
      if (e && e.intervalNs === intervalNs) {
        e.target = t;
        continue;
      }
      const offsetNs = phaseOffsetNs(t.id, intervalNs);
      const entry: Entry = e ?? { target: t, intervalNs, offsetNs, nextDueNs: 0n, gen: 0, state: 'idle', queuedDueNs: 0n, removed: false };
      entry.target = t;
      entry.intervalNs = intervalNs;
      entry.offsetNs = offsetNs;
      entry.gen++;
      entry.nextDueNs = this.firstSlot(now, intervalNs, offsetNs);
      this.entries.set(t.id, entry);
      this.pushDue(entry);
    }
    for (const [id, e] of this.entries) {
      if (seen.has(id)) continue;
      e.removed = true;
      this.entries.delete(id);
    }
    this.arm();
  }

  /**
   * Stops scheduling, waits up to `graceMs` for running probes, then aborts the rest and
   * waits (briefly) for them to return. Leaves no timer behind.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      const queued = this.ready.length - this.readyHead;
      if (queued > 0) this.opts.observer?.missed?.(queued);
      this.ready.length = 0;
      this.readyHead = 0;
    }
    if (this.running.size > 0 && !(await this.waitIdle(graceMs))) {
      this.opts.log?.warn({ inFlight: this.running.size, graceMs }, 'aborting probes still running at stop');
      for (const r of this.running) r.controller.abort(new Error('prober stopping'));
      await this.waitIdle(1_000);
    }
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.armedAtNs = undefined;
    this.heap.clear();
    this.entries.clear();
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let settled = false;
      const t = this.timers.set(() => {
        if (settled) return;
        settled = true;
        resolve(false);
      }, ms);
      this.idleWaiters.push(() => {
        if (settled) return;
        settled = true;
        this.timers.clear(t);
        resolve(true);
      });
    });
  }

  /** First slot at or after `nowNs` with (realtime mod interval) == offset. */
  private firstSlot(nowNs: bigint, intervalNs: bigint, offsetNs: bigint): bigint {
    const wall = nowNs + this.realOffsetNs;
    const into = (((wall - offsetNs) % intervalNs) + intervalNs) % intervalNs;
    const slot = into === 0n ? wall : wall - into + intervalNs;
    return slot - this.realOffsetNs;
  }

  private pushDue(e: Entry): void {
    this.heap.push({ atNs: e.nextDueNs, seq: this.seq++, kind: 'due', entry: e, gen: e.gen });
  }

  private arm(): void {
    if (this.ticking) return; // tick() re-arms once when it is done
    const top = this.heap.peek();
    if (!top) {
      if (this.timer !== undefined) this.timers.clear(this.timer);
      this.timer = undefined;
      this.armedAtNs = undefined;
      return;
    }
    if (this.timer !== undefined && this.armedAtNs !== undefined && this.armedAtNs <= top.atNs) return;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    const delayNs = top.atNs - this.opts.clock.monoNs();
    const delayMs = delayNs <= 0n ? 0 : Math.ceil(Number(delayNs) / 1e6);
    this.armedAtNs = top.atNs;
    this.timer = this.timers.set(() => this.tick(), delayMs);
  }

  private tick(): void {
    this.timer = undefined;
    this.armedAtNs = undefined;
    const now = this.opts.clock.monoNs();
    this.ticking = true;
    for (let top = this.heap.peek(); top && top.atNs <= now; top = this.heap.peek()) {
      this.heap.pop();
      if (top.kind === 'deadline') {
        if (!top.run.done) top.run.controller.abort(new Error('probe timeout'));
      } else if (!top.entry.removed && top.gen === top.entry.gen) {
        this.onDue(top.entry, top.atNs, now);
      }
    }
    this.ticking = false;
    this.arm();
  }

  private onDue(e: Entry, dueNs: bigint, now: bigint): void {
    if (this.stopping) return;
    let next = dueNs + e.intervalNs;
    if (next <= now) {
      // The loop stalled for more than an interval: run this slot late, count the rest.
      const passed = (now - next) / e.intervalNs + 1n;
      next += passed * e.intervalNs;
      this.opts.observer?.missed?.(Number(passed));
    }
    e.nextDueNs = next;
    this.pushDue(e);
    if (e.state !== 'idle') {
      this.opts.observer?.missed?.(1);
      return;
    }
    if (this.running.size < this.opts.maxConcurrency) {
      this.start(e, dueNs, now);
    } else {
      e.state = 'queued';
      e.queuedDueNs = dueNs;
      this.ready.push(e);
      this.opts.observer?.late?.();
    }
  }

  private start(e: Entry, dueNs: bigint, now: bigint): void {
    const run: Run = { controller: new AbortController(), done: false };
    e.state = 'running';
    this.running.add(run);
    this.opts.observer?.inFlight?.(this.running.size);
    this.opts.observer?.lag?.(Number(now - dueNs) / 1e9);
    this.heap.push({ atNs: now + BigInt(Math.max(1, Math.round(e.target.timeoutMs))) * MS, seq: this.seq++, kind: 'deadline', run });
    this.arm();
    let p: Promise<void>;
    try {
      p = this.runner({ target: e.target, signal: run.controller.signal, dueMonoNs: dueNs, startMonoNs: now });
    } catch (err) {
      p = Promise.reject(err);
    }
    p.catch((err) => this.opts.log?.error({ err, target: e.target.id }, 'probe runner failed')).finally(() => this.finished(e, run));
  }

  private finished(e: Entry, run: Run): void {
    run.done = true;
    this.running.delete(run);
    e.state = 'idle';
    this.opts.observer?.inFlight?.(this.running.size);
    while (!this.stopping && this.running.size < this.opts.maxConcurrency && this.readyHead < this.ready.length) {
      const next = this.ready[this.readyHead++]!;
      if (next.removed || next.state !== 'queued') continue;
      this.start(next, next.queuedDueNs, this.opts.clock.monoNs());
    }
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready.splice(0, this.readyHead);
      this.readyHead = 0;
    }
    if (this.running.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    this.arm();
  }
}
