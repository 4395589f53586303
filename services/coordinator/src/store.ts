/**
 * Where assignments live: KV `pm_assignments` (key = prober id), written with
 * compare-and-set so that a deposed leader can never overwrite a newer term's value.
 */
import { KV_ASSIGNMENTS, Logger, openKv, ProbemeshError, toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, NatsConnection } from 'nats';

/** A newer leader (higher term) wrote an assignment: this publisher must stop. */
export class StaleLeaderError extends ProbemeshError {
  constructor(readonly prober: string, readonly ourTerm: bigint, readonly theirTerm: bigint) {
    super('PM_STALE_LEADER', `assignment of ${prober} was written under term ${theirTerm} > our term ${ourTerm}: another coordinator leads`);
    this.name = 'StaleLeaderError';
  }
}

/** Where assignments are stored (KV `pm_assignments`, or a fake in unit tests). */
export interface AssignmentStore {
  /** Every stored assignment. */
  load(): Promise<probemesh.v1.Assignment[]>;
  /** Stores `a` under its prober's id. */
  put(a: probemesh.v1.Assignment): Promise<void>;
}

/**
 * The KV-backed {@link AssignmentStore}: writes are compare-and-set on the revision
 * last read or written; on a conflict the stored value's term decides — higher than
 * ours throws {@link StaleLeaderError}, otherwise (a deposed leader's late write) it
 * is overwritten.
 */
export async function openAssignmentStore(nc: NatsConnection, log: Logger, replicas = 1): Promise<AssignmentStore> {
  const kv: KV = await openKv(nc, KV_ASSIGNMENTS, { history: 1, replicas });
  const revisions = new Map<string, number>();
  return {
    async load() {
      const out: probemesh.v1.Assignment[] = [];
      for await (const k of await kv.keys()) {
        const e = await kv.get(k);
        if (!e) continue;
        revisions.set(k, e.revision);
        if (e.operation !== 'PUT') continue;
        try {
          out.push(probemesh.v1.Assignment.decode(e.value));
        } catch (err) {
          log.warn({ err, key: k }, 'undecodable assignment in pm_assignments ignored');
        }
      }
      return out;
    },
    async put(a) {
      const data = probemesh.v1.Assignment.encode(a).finish();
      for (let attempt = 1; ; attempt++) {
        const rev = revisions.get(a.prober);
        try {
          revisions.set(a.prober, rev === undefined ? await kv.create(a.prober, data) : await kv.update(a.prober, data, rev));
          return;
        } catch (err) {
          if (attempt >= 3 || !/wrong last sequence|key exists/i.test(String((err as Error)?.message ?? err))) throw err;
        }
        const cur = await kv.get(a.prober);
        if (!cur) {
          revisions.delete(a.prober);
          continue;
        }
        if (cur.operation === 'PUT') {
          const theirs = toBigInt(probemesh.v1.Assignment.decode(cur.value).term);
          if (theirs > toBigInt(a.term)) throw new StaleLeaderError(a.prober, toBigInt(a.term), theirs);
        }
        revisions.set(a.prober, cur.revision);
      }
    },
  };
}

