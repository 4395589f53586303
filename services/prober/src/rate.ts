/** Events per second between two reads (the load a prober reports in its heartbeat). */
import { Clock } from '@probemesh/common';

/** Counts events; `perSecond()` gives the rate since the previous call. */
export class RateMeter {
  private count = 0;
  private since: bigint;

  constructor(private readonly clock: Clock) {
    this.since = clock.monoNs();
  }

  /** One event. */
  mark(): void {
    this.count++;
  }

  /** Events per second since the previous call (or since construction). */
  perSecond(): number {
    const now = this.clock.monoNs();
    const secs = Number(now - this.since) / 1e9;
    const rate = secs > 0 ? this.count / secs : 0;
    this.count = 0;
    this.since = now;
    return rate;
  }
}
