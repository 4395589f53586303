/**
 * Coordinator leadership: one leader through a compare-and-swap lease in KV
 * `pm_leader` (key `leader`, value {@link probemesh.v1.LeaderLease}).
 *
 * - First acquisition: `kv.create` (fails if someone holds it).
 * - Renewal: `kv.update(key, value, revision)` on the revision we wrote last, every
 *   `renewMs`; any failure (a write by someone else, NATS unreachable) deposes us at once.
 * - The leader also deposes itself when it has not renewed successfully for
 *   0.9 × `leaseMs` measured from *before* the last successful renewal was sent, so
 *   it stops before any standby can take over (standbys measure from when they *saw*
 *   that renewal, which is later).
 * - Standbys poll the key; a lease whose revision did not change for its `lease_ms`
 *   on the standby's own monotonic clock (or one released with `lease_ms` 0) is
 *   expired: the standby takes it over with `kv.update` on the seen revision and
 *   `term + 1`. Expiry never compares wall clocks of two machines
 *   (`renewed_unix_nano` is informational).
 */
import { Clock, KV_LEADER, Logger, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, KvEntry, NatsConnection } from 'nats';
import { Feed, Subscription } from './feed';

/** The key of the lease in KV `pm_leader`. */
export const LEASE_KEY = 'leader';

/** A change of this coordinator's leadership. */
export type LeadershipEvent = { kind: 'elected'; term: bigint } | { kind: 'deposed'; term: bigint; reason: string };

/** Who holds the lease, as last seen. */
export interface LeaseHolder {
  coordinator: string;
  grpcAddress: string;
  term: bigint;
}

/** The subset of a nats.js KV the lease uses (a fake in unit tests). */
export type LeaseKv = Pick<KV, 'get' | 'create' | 'update'>;

/** Options of {@link LeaderLease}. */
export interface LeaderLeaseOptions {
  kv: LeaseKv;
  /** This coordinator's id. */
  id: string;
  /** Where this coordinator serves the AdminService (written into the lease). */
  grpcAddress: string;
  /** Lease duration. @default 3000 */
  leaseMs: number;
  /** Renew (leader) / check (standby) period. @default 1000 */
  renewMs: number;
  clock: Clock;
  log: Logger;
}

/** Opens KV `pm_leader` with request timeouts below the lease, so a hung renew cannot outlive it. */
export async function openLeaseKv(nc: NatsConnection, leaseMs: number, replicas: number): Promise<KV> {
  return nc.jetstream({ timeout: Math.max(100, Math.floor(leaseMs / 2)) }).views.kv(KV_LEADER, { history: 1, replicas });
}

/** Campaigns for, holds and renews the leader lease. */
export class LeaderLease {
  private held = false;
  private termValue = 0n;
  private myRevision = 0;
  private validUntilNs = 0n;
  private observed: { revision: number; sinceNs: bigint; lease: probemesh.v1.LeaderLease } | undefined;
  private holderValue: LeaseHolder | undefined;
  private readonly feed = new Feed<LeadershipEvent>();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: LeaderLeaseOptions) {}

  /** True while this coordinator holds a lease that is valid by its own clock. */
  isLeader(): boolean {
    return this.held && this.opts.clock.monoNs() < this.validUntilNs;
  }

  /** Current term (ours while leading, else the last seen holder's). */
  get term(): bigint {
    return this.held ? this.termValue : (this.holderValue?.term ?? 0n);
  }

  /** The lease holder as last seen (undefined before the first read or when none). */
  holder(): LeaseHolder | undefined {
    return this.held ? { coordinator: this.opts.id, grpcAddress: this.opts.grpcAddress, term: this.termValue } : this.holderValue;
  }

  /** Leadership changes from now on. */
  changes(): Subscription<LeadershipEvent> {
    return this.feed.subscribe();
  }

  /** Starts campaigning (first attempt before resolving). */
  async start(): Promise<void> {
    await this.tick();
    this.loop = (async () => {
      while (!this.stopped) {
        const waitMs = this.held ? this.opts.renewMs : Math.max(20, Math.floor(Math.min(this.opts.renewMs, this.opts.leaseMs / 4)));
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, waitMs);
        });
        if (!this.stopped) await this.tick();
      }
    })();
  }

  /** Stops campaigning; a leader releases the lease (lease_ms 0) so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    if (this.held) {
      const lease = this.encode(0);
      try {
        await this.opts.kv.update(LEASE_KEY, lease, this.myRevision);
        this.opts.log.info({ term: String(this.termValue) }, 'leader lease released');
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'could not release the leader lease; it expires by itself');
      }
      this.depose('stopping');
    }
    this.feed.close();
  }

  private encode(leaseMs = this.opts.leaseMs): Uint8Array {
    return probemesh.v1.LeaderLease.encode({
      coordinator: this.opts.id,
      grpcAddress: this.opts.grpcAddress,
      term: toULong(this.termValue),
      renewedUnixNano: toULong(this.opts.clock.nowNs()),
      leaseMs,
    }).finish();
  }

  /** One campaign / renewal step (public for tests). */
  async tick(): Promise<void> {
    if (this.held) return this.renew();
    let e: KvEntry | null;
    try {
      e = await this.opts.kv.get(LEASE_KEY);
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'reading the leader lease failed');
      return;
    }
    const now = this.opts.clock.monoNs();
    if (!e || e.operation !== 'PUT') {
      const prevTerm = this.observed ? toBigInt(this.observed.lease.term) : 0n;
      await this.acquire(prevTerm + 1n, e ? e.revision : undefined, 'no lease');
      return;
    }
    let lease: probemesh.v1.LeaderLease;
    try {
      lease = probemesh.v1.LeaderLease.decode(e.value);
    } catch {
      lease = probemesh.v1.LeaderLease.create({});
    }
    if (this.observed?.revision !== e.revision) this.observed = { revision: e.revision, sinceNs: now, lease };
    this.holderValue = { coordinator: lease.coordinator, grpcAddress: lease.grpcAddress, term: toBigInt(lease.term) };
    const leaseMs = lease.leaseMs;
    const silentMs = Number(now - this.observed.sinceNs) / 1e6;
    if (leaseMs > 0 && silentMs < leaseMs) return;
    await this.acquire(toBigInt(lease.term) + 1n, e.revision, leaseMs === 0 ? `lease released by ${lease.coordinator}` : `lease of ${lease.coordinator} not renewed for ${Math.round(silentMs)}ms`);
  }

  private async acquire(term: bigint, revision: number | undefined, why: string): Promise<void> {
    const sentNs = this.opts.clock.monoNs();
    this.termValue = term;
    try {
      this.myRevision = revision === undefined ? await this.opts.kv.create(LEASE_KEY, this.encode()) : await this.opts.kv.update(LEASE_KEY, this.encode(), revision);
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'taking the leader lease failed (another coordinator was faster)');
      return;
    }
    this.held = true;
    this.extend(sentNs);
    this.opts.log.info({ term: String(term), why }, 'elected leader');
    this.feed.push({ kind: 'elected', term });
  }

  private async renew(): Promise<void> {
    const sentNs = this.opts.clock.monoNs();
    try {
      this.myRevision = await this.opts.kv.update(LEASE_KEY, this.encode(), this.myRevision);
      if (this.held) this.extend(sentNs);
    } catch (err) {
      this.depose(`renewing the lease failed: ${(err as Error).message}`);
    }
  }

  private extend(sentNs: bigint): void {
    const validMs = Math.floor(this.opts.leaseMs * 0.9);
    this.validUntilNs = sentNs + BigInt(validMs) * 1_000_000n;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const leftMs = Math.max(0, Number(this.validUntilNs - this.opts.clock.monoNs()) / 1e6);
    this.expiryTimer = setTimeout(() => this.depose('lease expired without a successful renewal'), leftMs);
    this.expiryTimer.unref();
  }

  private depose(reason: string): void {
    if (!this.held) return;
    this.held = false;
    this.validUntilNs = 0n;
    this.observed = undefined;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.opts.log.warn({ term: String(this.termValue), reason }, 'no longer leader');
    this.feed.push({ kind: 'deposed', term: this.termValue, reason });
  }
}
