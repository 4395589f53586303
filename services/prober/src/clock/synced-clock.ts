/**
 * The prober's clock: the shared {@link AnchoredClock} (monotonic anchored to realtime,
 * re-anchored when realtime steps) whose error bound also counts the system clock's own
 * error from its sync source.
 */
import { AnchoredClock, Clock } from '@probemesh/common';
import type { ClockSyncStatus } from './sync';

/** See the module comment. */
export class SyncedClock implements Clock {
  constructor(
    private readonly base: AnchoredClock,
    private readonly sync: () => ClockSyncStatus,
  ) {}

  monoNs(): bigint {
    return this.base.monoNs();
  }

  nowNs(): bigint {
    return this.base.nowNs();
  }

  nowMs(): number {
    return this.base.nowMs();
  }

  /** Anchor uncertainty + the sync source's bound; 0 (unknown) when the source gives none. */
  errorBoundNs(): bigint {
    const src = this.sync().errorBoundNs;
    return src > 0n ? src + this.base.errorBoundNs() : 0n;
  }

  /** Uncertainty of the monotonic→realtime anchor alone, ns. */
  anchorUncertaintyNs(): bigint {
    return this.base.errorBoundNs();
  }
}
