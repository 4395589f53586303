/**
 * Stale markers: when a target is removed (KV `pm_targets` delete) or leaves a prober's
 * assignment (KV `pm_assignments`), every series this aggregator wrote for that
 * (target, prober) gets a Prometheus staleness marker (NaN 0x7ff0000000000002), so
 * queries stop returning it at once instead of 5 minutes later. Both buckets are only
 * read (bound, never created: the coordinator owns them). Markers are queued `graceMs`
 * after the change, so results the prober sent just before it are written first, and
 * carry a timestamp after the series' last sample.
 */
import { KV, KvEntry, NatsConnection } from 'nats';
import { describeError, KV_ASSIGNMENTS, KV_TARGETS, Logger } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { AggregatorMetrics } from './metrics';
import { ModelSample, SeriesModel } from './series-model';
import { realSleep } from './remote-write';

/** Dependencies of {@link StaleMarkers}. */
export interface StaleMarkersOptions {
  nc: NatsConnection;
  model: SeriesModel;
  /** Queues markers (the pipeline). */
  emit: (samples: ModelSample[]) => void;
  metrics: AggregatorMetrics;
  log: Logger;
  /** Wall clock, ms. */
  nowMs: () => number;
  /** Delay between the change and the markers. @default 5000 */
  graceMs?: number;
}

/** Watches targets and assignments and queues stale markers; see the file comment. */
export class StaleMarkers {
  private readonly assigned = new Map<string, Set<string>>();
  private readonly abort = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private loops: Promise<void>[] = [];

  constructor(private readonly o: StaleMarkersOptions) {}

  /** Starts both watches (each waits for its bucket to exist). */
  start(): void {
    this.loops = [this.watch(KV_TARGETS, (e, init) => this.onTarget(e, init)), this.watch(KV_ASSIGNMENTS, (e, init) => this.onAssignment(e, init))];
  }

  private async watch(bucket: string, fn: (e: KvEntry, initial: boolean) => void): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let kv: KV;
      try {
        kv = await this.o.nc.jetstream().views.kv(bucket, { bindOnly: true });
      } catch {
        await realSleep(2000, signal);
        continue;
      }
      try {
        let initial = true;
        const iter = await kv.watch({ initializedFn: () => (initial = false) });
        signal.addEventListener('abort', () => iter.stop(), { once: true });
        for await (const e of iter) {
          if (signal.aborted) break;
          fn(e, initial);
        }
      } catch (err) {
        this.o.log.warn({ err: describeError(err), bucket }, 'kv watch failed; rewatching');
      }
      await realSleep(1000, signal);
    }
  }

  private onTarget(e: KvEntry, initial: boolean): void {
    if (initial || e.operation === 'PUT') return;
    for (const g of this.o.model.groupsOfTarget(e.key)) this.schedule(g, 'target_removed');
  }

  private onAssignment(e: KvEntry, initial: boolean): void {
    const prober = e.key;
    const before = this.assigned.get(prober);
    let now = new Set<string>();
    if (e.operation === 'PUT') {
      try {
        now = new Set((probemesh.v1.Assignment.decode(e.value).targets ?? []).map((t) => t.id ?? ''));
      } catch (err) {
        this.o.log.warn({ err: describeError(err), prober }, 'undecodable assignment ignored');
        return;
      }
      this.assigned.set(prober, now);
    } else this.assigned.delete(prober);
    if (initial) return;
    const removed = before ? [...before].filter((id) => !now.has(id)) : [];
    // Without an earlier assignment in view, compare with what we wrote for the prober.
    if (!before) for (const g of this.o.model.groupsOfProber(prober)) if (!now.has(g.split('\n')[0]!)) removed.push(g.split('\n')[0]!);
    for (const id of removed) this.schedule(`${id}\n${prober}`, 'target_moved');
  }

  private schedule(group: string, cause: string): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.mark(group, cause);
    }, this.o.graceMs ?? 5000);
    this.timers.add(t);
  }

  /** Queues markers for every written series of `group` now and forgets the group. */
  mark(group: string, cause: string): number {
    const series = this.o.model.groupSeries(group);
    if (series.length === 0) return 0;
    const now = this.o.nowMs();
    const samples = series.map((s) => ({ s, v: NaN, t: Math.max(now, s.lastTs + 1) }));
    this.o.emit(samples);
    this.o.model.forgetGroup(group);
    this.o.metrics.staleMarkers.inc({ cause }, samples.length);
    this.o.log.info({ target_id: group.split('\n')[0], prober: group.split('\n')[1], cause, series: samples.length }, 'stale markers queued');
    return samples.length;
  }

  /** Stops watching (pending markers are not written). */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.loops);
  }
}
