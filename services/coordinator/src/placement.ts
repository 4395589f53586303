/**
 * Placement: which probers own which targets. Consistent hashing (the `hashring`
 * package, ketama-style) over the alive probers, each with capacity ×
 * `vnodesPerCapacity` virtual nodes, so removing a prober moves only its targets and
 * adding one moves about 1/n of them.
 *
 * With replication R a target gets R distinct probers: walking the ring from the
 * target's key gives it a preference order over all probers; the owners are the
 * first prober of each zone in that order (until R are chosen), then, if there are
 * fewer zones than R, the next probers in order. The choice depends only on the
 * preference order, which keeps movement minimal for R > 1 too.
 */
import HashRing = require('hashring');
import { PlacementNode } from './membership';

/** What placement needs of a target. */
export interface PlaceableTarget {
  /** Target id (the ring key). */
  id: string;
  /** Replication factor (>= 1). */
  replication: number;
}

/** The result of a placement. */
export interface Placement<T extends PlaceableTarget> {
  /** Prober id → targets it owns (every input prober present, possibly with none). */
  byProber: Map<string, T[]>;
  /** Target id → its owners, most preferred first. */
  owners: Map<string, string[]>;
  /** Targets that got fewer owners than their replication (not enough probers). */
  underReplicated: number;
}

/** Options of {@link placeTargets}. */
export interface PlacementOptions {
  /** Virtual nodes per unit of capacity. @default 100 */
  vnodesPerCapacity: number;
}

/** The ring over `nodes`; undefined when there are none. */
export function buildRing(nodes: readonly PlacementNode[], opts: PlacementOptions): HashRing | undefined {
  if (nodes.length === 0) return undefined;
  const servers: Record<string, { vnodes: number }> = {};
  // Sorted insertion makes ties between equal ring points deterministic.
  for (const n of [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    servers[n.id] = { vnodes: Math.max(1, Math.floor(n.capacity)) * opts.vnodesPerCapacity };
  }
  // 'vnode count' 0: hashring otherwise re-derives a node's points from its share of
  // the total weight whenever its vnodes equal the default (40), moving keys between
  // surviving nodes; with 0 every node always gets exactly the vnodes given here.
  return new HashRing(servers, 'md5', { 'vnode count': 0 });
}

/** Why a prober owns a target (GetPlacement). */
export interface OwnerReason {
  /** Prober id. */
  prober: string;
  /** Its zone. */
  zone: string;
  /** 1-based position of the prober in the target's ring preference order. */
  ringRank: number;
  /** Human-readable reason. */
  reason: string;
}

/**
 * The owners of `key` (as {@link chooseOwners} picks them) with the reason for each:
 * its rank in the ring walk from the key's hash, and the zone rule that selected it.
 */
export function explainOwners(ring: HashRing, key: string, replication: number, zoneOf: ReadonlyMap<string, string>): OwnerReason[] {
  const zoneCount = new Set(zoneOf.values()).size;
  const owners = chooseOwners(ring, key, replication, zoneOf, zoneCount);
  const order = ring.range(key, zoneOf.size, true);
  const hash = `0x${((ring as unknown as { hashValue(k: string): number }).hashValue(key) >>> 0).toString(16).padStart(8, '0')}`;
  const want = Math.min(replication, zoneOf.size);
  const wantZones = Math.min(want, zoneCount);
  return owners.map((p, i) => {
    const rank = order.indexOf(p) + 1;
    const zone = zoneOf.get(p) ?? '';
    let rule: string;
    if (i === 0) rule = 'primary: first prober clockwise on the ring';
    else if (i < wantZones) rule = `replica ${i + 1}: first prober of a zone not used yet (${zone}) in ring order`;
    else rule = `replica ${i + 1}: fewer zones (${zoneCount}) than replication (${replication}), next distinct prober in ring order`;
    return { prober: p, zone, ringRank: rank, reason: `ring successor ${rank} of hash ${hash}; ${rule}` };
  });
}

/**
 * Chooses the owners of `key` on `ring`: `replication` distinct probers, in distinct
 * zones as far as there are zones.
 */
export function chooseOwners(ring: HashRing, key: string, replication: number, zoneOf: ReadonlyMap<string, string>, zoneCount: number): string[] {
  const total = zoneOf.size;
  const want = Math.min(replication, total);
  const wantZones = Math.min(want, zoneCount);
  // Walk a prefix of the preference order, long enough to hold `wantZones` zones and
  // `want` probers: the choice over that prefix equals the choice over the whole order.
  let size = Math.min(total, Math.max(want, 1));
  let order: string[];
  for (;;) {
    order = ring.range(key, size, true);
    if (order.length >= total) break;
    const zones = new Set(order.map((p) => zoneOf.get(p)));
    if (zones.size >= wantZones && order.length >= want) break;
    size = Math.min(total, size * 2);
  }
  const owners: string[] = [];
  const usedZones = new Set<string | undefined>();
  for (const p of order) {
    if (owners.length >= want) break;
    const z = zoneOf.get(p);
    if (usedZones.has(z)) continue;
    usedZones.add(z);
    owners.push(p);
  }
  for (const p of order) {
    if (owners.length >= want) break;
    if (!owners.includes(p)) owners.push(p);
  }
  return owners;
}

/** Places `targets` on `nodes`. Pure: same input, same output. */
export function placeTargets<T extends PlaceableTarget>(nodes: readonly PlacementNode[], targets: readonly T[], opts: PlacementOptions): Placement<T> {
  const byProber = new Map<string, T[]>(nodes.map((n) => [n.id, []]));
  const owners = new Map<string, string[]>();
  let underReplicated = 0;
  const ring = buildRing(nodes, opts);
  if (!ring) return { byProber, owners, underReplicated: targets.length };
  const zoneOf = new Map(nodes.map((n) => [n.id, n.zone]));
  const zoneCount = new Set(zoneOf.values()).size;
  for (const t of targets) {
    const r = Math.max(1, t.replication);
    const chosen = chooseOwners(ring, t.id, r, zoneOf, zoneCount);
    if (chosen.length < r) underReplicated++;
    owners.set(t.id, chosen);
    for (const p of chosen) byProber.get(p)?.push(t);
  }
  return { byProber, owners, underReplicated };
}

/**
 * Counts owner changes between two placements: for every target present in both, the
 * owners in `after` that were not owners in `before` (a target moved off a dead prober
 * counts once per new owner). Targets only in one of them are not counted.
 */
export function countMoves(before: ReadonlyMap<string, readonly string[]>, after: ReadonlyMap<string, readonly string[]>): number {
  let moved = 0;
  for (const [id, now] of after) {
    const was = before.get(id);
    if (!was) continue;
    for (const p of now) if (!was.includes(p)) moved++;
  }
  return moved;
}
