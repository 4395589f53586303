/**
 * The probe interface. A probe module file exports a factory returning a {@link Probe};
 * a probe only probes: the caller (prober.ts) owns probe_success, the duration,
 * scheduling, metrics and export.
 */
import { Clock, Logger } from '@probemesh/common';
import { FailureCode } from './failure';
import type { SocketInfo } from '../ebpf/kernel-tcp';

/** What a probe needs to know about the target it probes. */
export interface ProbeTarget {
  /** Target id (`targetId(module, url)`). */
  readonly id: string;
  /** What to probe: a URL for http, `host:port` for tcp. */
  readonly url: string;
  /** Probe module name. */
  readonly module: string;
  /** Probe timeout in ms; the signal passed to `run` aborts at this deadline. */
  readonly timeoutMs: number;
  /** The target's own labels. */
  readonly labels: Readonly<Record<string, string>>;
}

/** What the caller lends a probe for one run. */
export interface ProbeContext {
  /** All timings are read from `clock.monoNs()`. */
  readonly clock: Clock;
  /** Logger of the probe component (log with `target: target.id`). */
  readonly log: Logger;
}

/** One timed phase of a probe. */
export interface PhaseTiming {
  /** Phase name (the `phase` label), e.g. `connect`. */
  readonly name: string;
  /** Length in ns on the monotonic clock. */
  readonly durationNs: bigint;
}

/** A module-specific value (blackbox naming), written as its own gauge sample. */
export interface GaugeValue {
  /** Metric name, e.g. `probe_ssl_earliest_cert_expiry`. */
  readonly name: string;
  /** Sample value. */
  readonly value: number;
  /** Extra labels of this sample. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The outcome of one probe. Expected failures are values here, never exceptions.
 *
 * Duration contract: a probe that reports phases reports contiguous slices of its own
 * run, from its first to its last clock reading, so the probe duration IS the sum of
 * the phases (the caller computes it that way; see `outcomeDurationNs`). Phases not
 * reached because the probe failed early are present with 0 ns, like blackbox.
 */
export interface ProbeOutcome {
  /** Whether the probe succeeded. */
  readonly success: boolean;
  /** Stable failure code; '' on success. */
  readonly failureCode: FailureCode | '';
  /** Human-readable detail; '' on success. */
  readonly failureMessage: string;
  /** Timed phases, in order. */
  readonly phases: readonly PhaseTiming[];
  /** HTTP status of the response (0 = none). */
  readonly httpStatusCode: number;
  /** HTTP version of the response (1.1, 2), 0 = none. */
  readonly httpVersion: number;
  /** Module-specific values. */
  readonly gauges: readonly GaugeValue[];
  /**
   * The requests of an http probe that followed redirects, in order (the last one is the
   * final response); absent or empty for other probes. Hop durations tile the probe.
   * @default undefined
   */
  readonly hops?: readonly RedirectHopTiming[];
  /**
   * The probe's (last) TCP connection: peer, local port and monotonic window, so the
   * prober can join the kernel's view of it (eBPF). Absent when no connection was tried.
   * @default undefined
   */
  readonly socketInfo?: SocketInfo;
}

/** One request of an http probe (a redirect hop or the final request). */
export interface RedirectHopTiming {
  /** URL requested. */
  readonly url: string;
  /** HTTP status answered (0 = none, the hop failed). */
  readonly statusCode: number;
  /** Duration of the hop (resolve → body end) in ns on the monotonic clock. */
  readonly durationNs: bigint;
}

/** A probe of one protocol, configured by one module. */
export interface Probe {
  /** Protocol, the blackbox `prober:` value (`http`, later `tcp`, `dns`, ...). */
  readonly kind: string;
  /**
   * Probes `target` once. Must return (not throw) when `signal` aborts, promptly, with
   * failure code `timeout` (or a phase-specific one like `connect_timeout`).
   */
  run(target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome>;
}

/** A failed outcome without phases (e.g. `unknown_module`, `invalid_target`). */
export function failedOutcome(failureCode: FailureCode, failureMessage: string): ProbeOutcome {
  return { success: false, failureCode, failureMessage, phases: [], httpStatusCode: 0, httpVersion: 0, gauges: [] };
}

/**
 * The probe duration: the sum of the phases when the probe reports phases (they tile its
 * run exactly), otherwise `measuredNs`, the caller's own measurement.
 */
export function outcomeDurationNs(outcome: ProbeOutcome, measuredNs: bigint): bigint {
  if (outcome.phases.length === 0) return measuredNs;
  return outcome.phases.reduce((sum, p) => sum + p.durationNs, 0n);
}
