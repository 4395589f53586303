/**
 * Timers, injected like the clock so the scheduler, publisher and heartbeat can be
 * driven by a fake clock in tests (see `testing/fake-time.ts`).
 */

/** An opaque handle returned by {@link Timers.set}. */
export type TimerHandle = unknown;

/** One-shot timers. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds. */
  set(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer (a no-op for one that already fired or was cancelled). */
  clear(handle: TimerHandle): void;
}

/** Node's own timers. */
export const systemTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Resolves after `ms` on `timers` (never rejects). */
export function sleep(timers: Timers, ms: number): Promise<void> {
  return new Promise((resolve) => timers.set(resolve, ms));
}
