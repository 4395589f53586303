/**
 * Time. `monoNs` is the kernel's CLOCK_MONOTONIC (the clock bpftrace's `nsecs`
 * reads), `nowNs` is realtime derived from it through an anchor: realtime at one
 * monotonic instant, measured by spinning until `Date.now()` ticks (error ~1 µs
 * instead of the 1 ms of a bare `Date.now()`). The anchor is refreshed when the
 * realtime clock is seen to step.
 */

/** A source of time, injected everywhere time is read. */
export interface Clock {
  /** Monotonic nanoseconds (CLOCK_MONOTONIC). */
  monoNs(): bigint;
  /** Nanoseconds since the Unix epoch, 1 µs resolution or better. */
  nowNs(): bigint;
  /** Milliseconds since the Unix epoch (for Prometheus timestamps). */
  nowMs(): number;
  /** Upper bound of `nowNs()`'s error in ns (0 = unknown). */
  errorBoundNs(): bigint;
}

/** Nanoseconds per millisecond. */
export const NS_PER_MS = 1_000_000n;

/** Measures realtime at a monotonic instant: spins until Date.now() ticks. */
export function measureAnchor(): { realNs: bigint; monoNs: bigint; uncertaintyNs: bigint } {
  const start = Date.now();
  let before = process.hrtime.bigint();
  let now = Date.now();
  while (now === start) {
    before = process.hrtime.bigint();
    now = Date.now();
  }
  const after = process.hrtime.bigint();
  // The tick happened between `before` and `after`; take the midpoint.
  return { realNs: BigInt(now) * NS_PER_MS, monoNs: (before + after) / 2n, uncertaintyNs: (after - before) / 2n };
}

/** The system clock, anchored as described above. */
export class AnchoredClock implements Clock {
  private anchorReal = 0n;
  private anchorMono = 0n;
  private uncertainty = 0n;
  private lastCheckMono = 0n;

  constructor(private readonly recheckEveryNs = 1_000_000_000n, private readonly stepThresholdNs = 2_000_000n) {
    this.reanchor();
  }

  /** Measures a fresh anchor. */
  reanchor(): void {
    const a = measureAnchor();
    this.anchorReal = a.realNs;
    this.anchorMono = a.monoNs;
    this.uncertainty = a.uncertaintyNs;
    this.lastCheckMono = a.monoNs;
  }

  monoNs(): bigint {
    return process.hrtime.bigint();
  }

  nowNs(): bigint {
    const mono = process.hrtime.bigint();
    if (mono - this.lastCheckMono > this.recheckEveryNs) {
      this.lastCheckMono = mono;
      // Date.now() has 1 ms resolution: a difference beyond the threshold is a step
      // (or slew accumulated) of the realtime clock, so re-anchor.
      const derived = this.anchorReal + (mono - this.anchorMono);
      const diff = BigInt(Date.now()) * NS_PER_MS - derived;
      if (diff > this.stepThresholdNs || diff < -this.stepThresholdNs) this.reanchor();
    }
    return this.anchorReal + (process.hrtime.bigint() - this.anchorMono);
  }

  nowMs(): number {
    return Number(this.nowNs() / NS_PER_MS);
  }

  errorBoundNs(): bigint {
    return this.uncertainty;
  }
}
