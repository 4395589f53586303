/**
 * The target registry: targets stored in JetStream KV `pm_targets` (key = target id,
 * value = probemesh.v1.Target), mirrored in memory by a KV watch so that changes made
 * by other coordinators or tools are seen, and published as a {@link Feed} of
 * {@link TargetChange}s that trigger rebalancing.
 */
import { Clock, KV_TARGETS, Logger, NotFoundError, openKv, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, KvEntry, NatsConnection, QueuedIterator } from 'nats';
import { Feed, Subscription } from './feed';
import { ValidTarget } from './validate';

/** A stored target (decoded protobuf). */
export type Target = probemesh.v1.Target;

/** A change of the target set. */
export type TargetChange =
  /** Added or replaced (`previous` set when replaced). */
  | { kind: 'put'; target: Target; previous?: Target }
  /** Removed. */
  | { kind: 'delete'; id: string; previous: Target };

/** Result of {@link TargetRegistry.put}. */
export interface PutResult {
  /** The target as stored. */
  target: Target;
  /** True when a target with the same id existed and was replaced. */
  replaced: boolean;
}

/** The newest known revision of a key; `target` is undefined for a deleted key (a tombstone). */
interface Stored {
  target?: Target;
  revision: number;
}

/** How often a put/remove retries when another writer changed the key concurrently. */
const CAS_ATTEMPTS = 5;

/** Orders targets by URL, then module (the ListTargets order). */
export function compareTargets(a: Target, b: Target): number {
  return a.url < b.url ? -1 : a.url > b.url ? 1 : a.module < b.module ? -1 : a.module > b.module ? 1 : 0;
}

/** The targets of the mesh, persisted in KV `pm_targets`. */
export class TargetRegistry {
  private readonly byId = new Map<string, Stored>();
  private readonly feed = new Feed<TargetChange>();
  private watcher: QueuedIterator<KvEntry> | undefined;
  private watchLoop: Promise<void> | undefined;

  private constructor(private readonly kv: KV, private readonly clock: Clock, private readonly log: Logger) {}

  /** Opens (creating) the bucket and loads every stored target before returning. */
  static async open(nc: NatsConnection, deps: { clock: Clock; log: Logger; replicas?: number }): Promise<TargetRegistry> {
    const kv = await openKv(nc, KV_TARGETS, { history: 1, replicas: deps.replicas ?? 1 });
    const reg = new TargetRegistry(kv, deps.clock, deps.log);
    await reg.startWatch();
    return reg;
  }

  private async startWatch(): Promise<void> {
    let initialized!: () => void;
    const ready = new Promise<void>((r) => (initialized = r));
    this.watcher = await this.kv.watch({ initializedFn: () => initialized() });
    const w = this.watcher;
    this.watchLoop = (async () => {
      try {
        for await (const e of w) this.apply(e);
      } catch (err) {
        this.log.error({ err }, 'pm_targets watch ended with an error');
      }
    })();
    await ready;
    this.log.info({ targets: this.byId.size }, 'targets loaded');
  }

  /** Applies a KV entry (from the watch or our own write), ignoring stale revisions. */
  private apply(e: KvEntry): void {
    const cur = this.byId.get(e.key);
    if (cur && cur.revision >= e.revision) return;
    if (e.operation !== 'PUT') {
      this.byId.set(e.key, { revision: e.revision });
      if (cur?.target) this.feed.push({ kind: 'delete', id: e.key, previous: cur.target });
      return;
    }
    let target: Target;
    try {
      target = probemesh.v1.Target.decode(e.value);
    } catch (err) {
      this.log.warn({ err, key: e.key, revision: e.revision }, 'undecodable target in pm_targets ignored');
      return;
    }
    this.byId.set(e.key, { target, revision: e.revision });
    this.feed.push(cur?.target ? { kind: 'put', target, previous: cur.target } : { kind: 'put', target });
  }

  /**
   * Stores `t` (adding or replacing): `created_unix_nano` is kept from an existing
   * target, `updated_unix_nano` is now. Uses compare-and-set on the KV revision, so
   * concurrent writers do not lose each other's `created` time.
   */
  async put(t: ValidTarget): Promise<PutResult> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.kv.get(t.id);
      const live = existing && existing.operation === 'PUT' ? existing : null;
      const now = this.clock.nowNs();
      const created = live ? probemesh.v1.Target.decode(live.value).createdUnixNano : toULong(now);
      const target = probemesh.v1.Target.create({
        id: t.id,
        url: t.url,
        module: t.module,
        intervalMs: t.intervalMs,
        timeoutMs: t.timeoutMs,
        replication: t.replication,
        labels: { ...t.labels },
        createdUnixNano: created,
        updatedUnixNano: toULong(now),
      });
      const bytes = probemesh.v1.Target.encode(target).finish();
      try {
        // `update` on the seen revision (a tombstone's too) is the compare-and-set;
        // `create` only succeeds if the key never existed or was deleted.
        const revision = existing ? await this.kv.update(t.id, bytes, existing.revision) : await this.kv.create(t.id, bytes);
        const stored = probemesh.v1.Target.decode(bytes);
        this.apply({ key: t.id, revision, operation: 'PUT', value: bytes } as KvEntry);
        return { target: stored, replaced: live !== null };
      } catch (err) {
        if (attempt >= CAS_ATTEMPTS || !isWrongSequence(err)) throw err;
      }
    }
  }

  /** Removes a target by id; throws {@link NotFoundError} when there is none. */
  async remove(id: string): Promise<Target> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.kv.get(id);
      if (!existing || existing.operation !== 'PUT') throw new NotFoundError(`no target with id ${id}`);
      const previous = probemesh.v1.Target.decode(existing.value);
      try {
        await this.kv.delete(id, { previousSeq: existing.revision });
        // The delete marker's revision is not returned; it is above the one we
        // replaced and nothing was written in between (compare-and-set), so this
        // tombstone hides every older entry the watch may still deliver.
        this.apply({ key: id, revision: existing.revision + 1, operation: 'DEL' } as KvEntry);
        return previous;
      } catch (err) {
        if (attempt >= CAS_ATTEMPTS || !isWrongSequence(err)) throw err;
      }
    }
  }

  /** One target by id, or undefined. */
  get(id: string): Target | undefined {
    return this.byId.get(id)?.target;
  }

  /** All targets (optionally of one module), sorted by URL then module. */
  list(module?: string): Target[] {
    const out: Target[] = [];
    for (const { target } of this.byId.values()) if (target && (!module || target.module === module)) out.push(target);
    return out.sort(compareTargets);
  }

  /** Number of targets. */
  get size(): number {
    let n = 0;
    for (const s of this.byId.values()) if (s.target) n++;
    return n;
  }

  /** Subscribes to target changes from now on. */
  changes(): Subscription<TargetChange> {
    return this.feed.subscribe();
  }

  /** Stops the KV watch and ends every change subscription. */
  async close(): Promise<void> {
    this.watcher?.stop();
    await this.watchLoop;
    this.feed.close();
  }
}

function isWrongSequence(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test(String((err as Error)?.message ?? err));
}
