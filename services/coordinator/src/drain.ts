/**
 * Drain hand-off: which targets a draining prober still has to probe. A target leaves
 * the draining prober's list only when every new owner
 *  1. holds it in its published assignment,
 *  2. has reported (heartbeat `applied_epoch`) an epoch at least that assignment's, and
 *  3. has had one interval of the target since that report — the scheduler starts a
 *     new target within one interval, so by then the new owner has probed it.
 * So the target is never without a prober that is probing it: no coverage gap.
 */
import { Target } from './targets';

/** prober → the newest published epoch it confirmed, and when the confirmation arrived (monotonic ns). */
export type DrainProgress = Map<string, { epoch: bigint; atNs: bigint }>;

/**
 * The targets `drained` must keep probing: those of its current list (`held`) not yet
 * handed over to all of their new owners. A target with no other owner (no other
 * prober alive) stays with the drained prober.
 */
export function drainKeepList(
  drained: string,
  held: ReadonlySet<string>,
  targetById: ReadonlyMap<string, Target>,
  owners: ReadonlyMap<string, readonly string[]>,
  published: (prober: string) => { targetIds: ReadonlySet<string>; epoch: bigint } | undefined,
  progress: DrainProgress,
  nowNs: bigint,
): Target[] {
  const keep: Target[] = [];
  for (const id of held) {
    const t = targetById.get(id);
    if (!t) continue;
    const newOwners = (owners.get(id) ?? []).filter((o) => o !== drained);
    const intervalNs = BigInt(Math.max(1, t.intervalMs)) * 1_000_000n;
    const handedOver =
      newOwners.length > 0 &&
      newOwners.every((o) => {
        const c = progress.get(o);
        const pub = published(o);
        return pub !== undefined && pub.targetIds.has(id) && c !== undefined && c.epoch >= pub.epoch && nowNs >= c.atNs + intervalNs;
      });
    if (!handedOver) keep.push(t);
  }
  return keep;
}
