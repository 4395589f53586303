/** GetPlacement and GetRing answers: the leader's ring, its nodes, and why a target's owners own it. */
import { toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { AssignmentPublisher } from './assignments';
import { LeaseHolder } from './lease';
import { Membership, normCapacity } from './membership';
import { buildRing, explainOwners } from './placement';
import { Target } from './targets';

function stateOf(membership: Membership, pub: AssignmentPublisher, id: string): string {
  const p = membership.get(id);
  if (!p) return 'unknown';
  return p.state === 'alive' && pub.draining().has(id) ? 'draining' : p.state;
}

/** The owners of `target` in the leader's current placement, with reasons. */
export function placementResponse(target: Target, pub: AssignmentPublisher, membership: Membership, vnodesPerCapacity: number): probemesh.v1.IGetPlacementResponse {
  const nodes = pub.ringNodes();
  const zoneOf = new Map(nodes.map((n) => [n.id, n.zone]));
  const ring = buildRing(nodes, { vnodesPerCapacity });
  const explained = ring ? explainOwners(ring, target.id, Math.max(1, target.replication), zoneOf) : [];
  const byProber = new Map(explained.map((e) => [e.prober, e]));
  const cap = new Map(nodes.map((n) => [n.id, n.capacity]));
  const { owners, handingOver } = pub.ownersOf(target.id);
  const out: probemesh.v1.IPlacementOwner[] = owners.map((o) => {
    const e = byProber.get(o);
    const reason = e ? `${e.reason}; capacity ${cap.get(o) ?? 1} (${(cap.get(o) ?? 1) * vnodesPerCapacity} vnodes)` : 'owner in the published placement';
    return { prober: o, zone: zoneOf.get(o) ?? membership.get(o)?.heartbeat.zone ?? '', reason, state: stateOf(membership, pub, o) };
  });
  for (const d of handingOver) {
    out.push({ prober: d, zone: membership.get(d)?.heartbeat.zone ?? '', reason: 'draining: keeps probing it until its new owners have applied their assignment and probed it', state: stateOf(membership, pub, d) });
  }
  if (out.length === 0) out.push({ prober: '', zone: '', reason: 'no owner: no alive prober outside drain', state: 'uncovered' });
  return { target, owners: out, epoch: toULong(pub.epoch) };
}

/** Every known prober as a ring node (vnodes 0 when it is not on the ring: dead, leaving, draining). */
export function ringResponse(membership: Membership, pub: AssignmentPublisher, vnodesPerCapacity: number, leader: LeaseHolder | undefined): probemesh.v1.IGetRingResponse {
  const onRing = new Set(pub.ringNodes().map((n) => n.id));
  const counts = pub.assignedCounts();
  const nodes: probemesh.v1.IRingNode[] = membership.list().map((p) => {
    const capacity = normCapacity(p.heartbeat.capacity);
    return { prober: p.id, zone: p.heartbeat.zone, capacity, vnodes: onRing.has(p.id) ? capacity * vnodesPerCapacity : 0, targets: counts.get(p.id) ?? 0, state: stateOf(membership, pub, p.id) };
  });
  return { nodes, epoch: toULong(pub.epoch), leader: leader?.coordinator ?? '', term: toULong(leader?.term ?? 0n) };
}
