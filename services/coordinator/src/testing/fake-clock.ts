/** A manually advanced {@link Clock} for unit tests. */
import { Clock } from '@probemesh/common';

/** Starts at monotonic 1 s, realtime 2024-01-01; moves only when told. */
export class FakeClock implements Clock {
  private mono = 1_000_000_000n;
  private readonly realOffset = 1_704_067_200_000_000_000n;

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    this.mono += BigInt(Math.round(ms * 1e6));
  }
  monoNs(): bigint {
    return this.mono;
  }
  nowNs(): bigint {
    return this.realOffset + this.mono;
  }
  nowMs(): number {
    return Number(this.nowNs() / 1_000_000n);
  }
  errorBoundNs(): bigint {
    return 0n;
  }
}
