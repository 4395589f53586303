/**
 * Turns the clock marks a probe took into contiguous phases that tile the run exactly:
 * phase i spans [mark i, mark i+1), a phase not reached (its mark missing because the
 * probe failed or timed out) ends at `endNs` and later phases are 0.
 */
import { PhaseTiming } from './types';

/**
 * Builds phases from `startNs`, per-phase end marks (in phase order, `undefined` = not
 * reached) and `endNs` (the probe's last clock reading). The sum is `endNs - startNs`.
 */
export function phasesFromMarks(names: readonly string[], startNs: bigint, ends: readonly (bigint | undefined)[], endNs: bigint): PhaseTiming[] {
  const out: PhaseTiming[] = [];
  let prev = startNs;
  for (let i = 0; i < names.length; i++) {
    const last = i === names.length - 1;
    let mark = last ? endNs : ends[i] ?? endNs;
    if (mark < prev) mark = prev;
    if (mark > endNs) mark = endNs;
    out.push({ name: names[i]!, durationNs: mark - prev });
    prev = mark;
  }
  return out;
}
