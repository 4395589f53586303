/**
 * Follows this prober's assignment: watches KV `pm_assignments` under the prober id and
 * applies an `Assignment` only when its epoch is newer than the one held (stale or
 * replayed values are ignored). Deletes are ignored too: the coordinator empties an
 * assignment by publishing one with no targets under a newer epoch.
 *
 * Not yet: fencing across coordinator restarts (an epoch counter reset by a new
 * leader would be ignored here until it passes the held epoch) — a later issue.
 */
import { Logger, toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, KvEntry } from 'nats';

/** Receives applied assignments. */
export type AssignmentHandler = (assignment: probemesh.v1.Assignment, epoch: bigint) => void;

/** A source of KV entries for one key (the nats.js KV, or a fake in tests). */
export interface AssignmentFeed {
  /** Entries for `key`: the current value first, then every update. */
  watch(opts: { key: string }): Promise<AsyncIterable<KvEntry> & { stop(): void }>;
}

/** Applies newer assignments of one prober. */
export class AssignmentWatcher {
  private epochHeld = 0n;
  private iter: (AsyncIterable<KvEntry> & { stop(): void }) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly prober: string, private readonly feed: AssignmentFeed | KV, private readonly onApply: AssignmentHandler, private readonly log: Logger) {}

  /** Epoch of the applied assignment (0 = none yet). */
  get epoch(): bigint {
    return this.epochHeld;
  }

  /** Starts watching (resolves once the watch is established). */
  async start(): Promise<void> {
    const iter = await (this.feed as AssignmentFeed).watch({ key: this.prober });
    this.iter = iter;
    this.loop = (async () => {
      try {
        for await (const e of iter) this.handle(e);
      } catch (err) {
        this.log.error({ err }, 'assignment watch ended with an error');
      }
    })();
  }

  /** Handles one KV entry (public for tests). */
  handle(e: Pick<KvEntry, 'operation' | 'value' | 'revision'>): void {
    if (e.operation !== 'PUT') {
      this.log.info({ op: e.operation, revision: e.revision }, 'assignment deleted; keeping the current targets until a newer epoch');
      return;
    }
    let a: probemesh.v1.Assignment;
    try {
      a = probemesh.v1.Assignment.decode(e.value);
    } catch (err) {
      this.log.error({ err: (err as Error).message, revision: e.revision }, 'undecodable assignment ignored');
      return;
    }
    const epoch = toBigInt(a.epoch);
    if (a.prober && a.prober !== this.prober) {
      this.log.error({ for: a.prober, revision: e.revision }, 'assignment for another prober ignored');
      return;
    }
    if (epoch <= this.epochHeld) {
      this.log.debug({ epoch: String(epoch), held: String(this.epochHeld) }, 'assignment not newer; ignored');
      return;
    }
    this.epochHeld = epoch;
    this.log.info({ epoch: String(epoch), targets: a.targets.length, coordinator: a.coordinator }, 'assignment applied');
    try {
      this.onApply(a, epoch);
    } catch (err) {
      // One bad assignment must not end the watch.
      this.log.error({ err, epoch: String(epoch) }, 'applying the assignment failed');
    }
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.iter?.stop();
    await this.loop;
  }
}
