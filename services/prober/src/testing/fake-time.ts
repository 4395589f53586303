/**
 * A fake clock with fake timers for unit tests: time moves only when the test calls
 * `advance`, which fires due timers in order (and lets promise callbacks run between
 * them).
 */
import { Clock } from '@probemesh/common';
import { TimerHandle, Timers } from '../timers';

interface FakeTimer {
  id: number;
  atNs: bigint;
  fn: () => void;
}

/** A {@link Clock} and {@link Timers} pair whose time only moves on `advance`. */
export class FakeTime implements Clock, Timers {
  private mono: bigint;
  private nextId = 1;
  private timers: FakeTimer[] = [];

  /**
   * @param startMonoNs initial monotonic time.
   * @param realOffsetNs realtime minus monotonic time.
   */
  constructor(startMonoNs = 1_000_000_000n, private readonly realOffsetNs = 1_700_000_000_000_000_000n) {
    this.mono = startMonoNs;
  }

  monoNs(): bigint {
    return this.mono;
  }
  nowNs(): bigint {
    return this.mono + this.realOffsetNs;
  }
  nowMs(): number {
    return Number(this.nowNs() / 1_000_000n);
  }
  errorBoundNs(): bigint {
    return 0n;
  }

  set(fn: () => void, ms: number): TimerHandle {
    const t = { id: this.nextId++, atNs: this.mono + BigInt(Math.max(0, Math.ceil(ms * 1e6))), fn };
    this.timers.push(t);
    return t.id;
  }
  clear(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Number of pending timers. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in time order. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + BigInt(Math.round(ms * 1e6));
    for (;;) {
      await flushMicrotasks();
      let next: FakeTimer | undefined;
      for (const t of this.timers) if (t.atNs <= end && (!next || t.atNs < next.atNs || (t.atNs === next.atNs && t.id < next.id))) next = t;
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      if (next.atNs > this.mono) this.mono = next.atNs;
      next.fn();
    }
    this.mono = end;
    await flushMicrotasks();
  }
}

/** Lets queued promise callbacks run. */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}
