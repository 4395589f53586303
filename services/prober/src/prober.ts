/**
 * Wires one prober together: NATS (results stream, KV buckets), /metrics, heartbeat,
 * assignment watch, scheduler, probe modules and the result publisher.
 */
import { randomBytes } from 'node:crypto';
import { AnchoredClock, Clock, connectNats, createLogger, ensureResultsStream, KV_ASSIGNMENTS, KV_PROBERS, Logger, openKv, serveHttp, targetId, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, NatsConnection } from 'nats';
import { AssignmentWatcher, ConnectionFence } from './assignment';
import { ClockSyncMonitor, registerClockMetrics, SyncedClock } from './clock';
import { EbpfRunner, EbpfStatus, KernelTcp, kernelNote, kernelTcpProto, registerEbpfMetrics } from './ebpf';
import { ProberConfig } from './config';
import { HeartbeatSender } from './heartbeat';
import { RateMeter } from './rate';
import { createProberMetrics } from './metrics';
import { loadModuleDefinitions, ProbeModules } from './modules';
import { probeRoute } from './probe-handler';
import { outcomeDurationNs } from './probes';
import { ResultPublisher } from './publisher';
import { ProbeRunner, ScheduledTarget, Scheduler } from './scheduler';

/** A running prober. */
export interface RunningProber {
  /** Prober id. */
  id: string;
  /** Base URL of its HTTP endpoint (/metrics). */
  httpUrl: string;
  /** eBPF status now (up, or why not). */
  ebpf(): EbpfStatus;
  /** Resolves once bpftrace attached or failed (it starts in the background; probes before carry no kernel data). */
  ebpfReady: Promise<EbpfStatus>;
  /** Stops cleanly (see {@link startProber}); idempotent. */
  stop(): Promise<void>;
}

/** Optional dependencies of {@link startProber}. */
export interface ProberDeps {
  /** Root logger. @default createLogger('prober', id, config.log.level) */
  log?: Logger;
  /** Clock. @default new AnchoredClock() */
  clock?: Clock;
  /** Probe modules. @default the built-in modules (`http_2xx`) */
  modules?: ProbeModules;
  /** eBPF runner. @default an EbpfRunner from `config.ebpf` */
  ebpf?: EbpfRunner;
}

/** Shortest interval a target may have (the Target contract says >= 100 ms). */
const MIN_INTERVAL_MS = 100;
/** Longest the stop waits for running probes before aborting them. */
const STOP_GRACE_MAX_MS = 10_000;
/** Longest the stop waits for JetStream to acknowledge buffered results. */
const STOP_FLUSH_MS = 5_000;

/**
 * Starts a prober. `stop()` stops scheduling, waits for running probes (bounded),
 * flushes the publisher, sends the leaving heartbeat, drains NATS and closes HTTP,
 * leaving no timer behind.
 */
export async function startProber(config: ProberConfig, deps: ProberDeps = {}): Promise<RunningProber> {
  const id = config.id;
  const log = deps.log ?? createLogger('prober', id, config.log.level);
  const clockSync = new ClockSyncMonitor({
    pmcPath: config.clock.pmc_path || false,
    chronycPath: config.clock.chronyc_path || false,
    adjtimex: config.clock.adjtimex,
    pollIntervalMs: config.clock.poll_interval,
    log: log.child({ component: 'clock' }),
  });
  const clock = deps.clock ?? new SyncedClock(new AnchoredClock(), () => clockSync.status());
  const ebpf = deps.ebpf ?? new EbpfRunner({ enabled: config.ebpf.enabled, bpftracePath: config.ebpf.bpftrace_path, programPath: config.ebpf.program, attachTimeoutMs: config.ebpf.attach_timeout, log: log.child({ component: 'ebpf' }) });
  const modules = deps.modules ?? new ProbeModules(loadModuleDefinitions(config));
  const metrics = createProberMetrics({ prober: id, zone: config.zone });
  registerEbpfMetrics(metrics.registry, ebpf);
  registerClockMetrics(metrics.registry, () => clockSync.status());
  const cleanups: (() => Promise<unknown>)[] = [];
  const bootId = randomBytes(6).toString('hex');

  try {
    const nc: NatsConnection = await connectNats(config.nats, `probemesh-prober-${id}`, log);
    cleanups.push(() => nc.close());
    // The coordinator and the aggregators own the stream's limits; a prober only creates it when missing.
    const stream = await ensureResultsStream(await nc.jetstreamManager(), config.stream, { updateLimits: false });
    if (stream.differs) log.info({ stream: stream.differs }, 'PM_RESULTS exists with other limits than this prober\'s stream settings; left as is (the coordinator and aggregators set them)');
    const kvProbers = await openKvRetry(nc, KV_PROBERS);
    const kvAssignments = await openKvRetry(nc, KV_ASSIGNMENTS);
    const endpoint = await serveHttp(config.http, metrics.registry, log, {
      '/probe': probeRoute({ modules, clock, log, timeoutOffsetMs: config.probe_timeout_offset }),
    });
    cleanups.push(() => endpoint.close());
    await clockSync.start();
    cleanups.push(() => clockSync.stop());
    const ebpfReady = ebpf.start();
    cleanups.push(() => ebpf.stop());

    let maxTimeoutMs = 0;
    const js = nc.jetstream();
    // Epoch is read through the watcher, created below; the closure runs later.
    let watcher: AssignmentWatcher | undefined;
    let fence: ConnectionFence | undefined;
    const heldEpoch = (): bigint => watcher?.epoch ?? 0n;
    const publisher = new ResultPublisher({
      prober: id,
      zone: config.zone,
      bootId,
      maxBatch: config.publish.max_batch,
      maxDelayMs: config.publish.max_delay,
      maxBufferedResults: config.publish.max_buffered_results,
      publish: async (subject, data, msgID) => {
        await js.publish(subject, data, { msgID, timeout: 5_000 });
      },
      epoch: heldEpoch,
      clock,
      log: log.child({ component: 'publisher' }),
      observer: {
        published: (n) => metrics.resultsPublished.inc(n),
        publishError: () => metrics.publishErrors.inc(),
        dropped: (n) => metrics.resultsDropped.inc(n),
        buffered: (n) => metrics.resultsBuffered.set(n),
      },
    });

    const probeLog = log.child({ component: 'probe' });
    const runner: ProbeRunner = async (run) => {
      if (fence?.fenced) return; // cut off from NATS: maybe no longer the owner (assignment.ts)
      const t = run.target;
      const epoch = heldEpoch();
      const startUnixNano = clock.nowNs();
      const startMono = clock.monoNs();
      const outcome = await modules.run(t, run.signal, { clock, log: probeLog });
      const kernel: KernelTcp | undefined = outcome.socketInfo ? await ebpf.join(outcome.socketInfo) : undefined;
      const note = kernel && !outcome.success ? kernelNote(kernel) : '';
      const durationNs = outcomeDurationNs(outcome, clock.monoNs() - startMono);
      metrics.probes.inc({ module: t.module, result: outcome.success ? 'success' : outcome.failureCode || 'error' });
      publisher.add({
        targetId: t.id,
        target: t.url,
        module: t.module,
        prober: id,
        zone: config.zone,
        startUnixNano: toULong(startUnixNano),
        success: outcome.success,
        failureCode: outcome.failureCode,
        failureMessage: note ? `${outcome.failureMessage} (${note})` : outcome.failureMessage,
        durationNs: toULong(durationNs),
        phases: outcome.phases.map((p) => ({ name: p.name, durationNs: toULong(p.durationNs) })),
        protocol: modules.definition(t.module)?.prober ?? '',
        httpStatusCode: outcome.httpStatusCode,
        httpVersion: outcome.httpVersion,
        epoch: toULong(epoch),
        labels: { ...t.labels },
        gauges: outcome.gauges.map((g) => ({ name: g.name, value: g.value, labels: g.labels ? { ...g.labels } : {} })),
        hops: outcome.hops?.map((h) => ({ url: h.url, statusCode: h.statusCode, durationNs: toULong(h.durationNs) })),
        clockErrorBoundNs: toULong(clock.errorBoundNs()),
        kernel: kernel ? kernelTcpProto(kernel) : undefined,
      });
    };
    const probeRate = new RateMeter(clock);
    const scheduler = new Scheduler(runner, {
      maxConcurrency: config.max_concurrency,
      clock,
      log: log.child({ component: 'scheduler' }),
      observer: {
        lag: (s) => {
          metrics.schedulerLag.observe(s);
          probeRate.mark();
        },
        late: () => metrics.schedulerLate.inc(),
        missed: (n) => metrics.schedulerMissed.inc(n),
        inFlight: (n) => metrics.inFlight.set(n),
      },
    });
    cleanups.push(() => scheduler.stop(0));

    const assignLog = log.child({ component: 'assignment' });
    watcher = new AssignmentWatcher(
      id,
      kvAssignments,
      (a, epoch) => {
        const targets = a.targets.map((t) => toScheduled(t, modules, assignLog));
        maxTimeoutMs = targets.reduce((m, t) => Math.max(m, t.timeoutMs), 0);
        scheduler.setTargets(targets);
        metrics.targets.set(scheduler.size);
        metrics.assignmentEpoch.set(Number(epoch));
      },
      assignLog,
    );

    const heartbeat = new HeartbeatSender(
      { prober: id, region: config.region, zone: config.zone, capacity: config.capacity, httpUrl: endpoint.url, appliedEpoch: heldEpoch, targets: () => scheduler.size, modules: () => modules.names(), modulesJson: () => JSON.stringify(Object.fromEntries(modules.names().map((n) => [n, modules.definition(n)]))), probesPerSecond: () => probeRate.perSecond(), clock: () => clockSync.status(), ebpf: () => ebpf.status() },
      { publish: (subject, data) => nc.publish(subject, data), register: (key, data) => kvProbers.put(key, data) },
      { intervalMs: config.heartbeat_interval, clock, log: log.child({ component: 'heartbeat' }) },
    );
    await heartbeat.start();
    cleanups.push(() => heartbeat.stop());
    await watcher.start();
    cleanups.push(() => watcher!.stop());
    const theFence = (fence = new ConnectionFence({ fenceAfterMs: 3 * config.heartbeat_interval, checkEveryMs: config.heartbeat_interval, ping: () => nc.flush(), resync: async () => { const e = await kvAssignments.get(id); if (e) watcher!.handle(e); }, clock, log: log.child({ component: 'fence' }) }));
    theFence.start();
    cleanups.push(async () => theFence.stop());
    log.info({ http: endpoint.url, zone: config.zone, region: config.region, boot: bootId, modules: modules.names() }, 'prober started');

    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      theFence.stop();
      await watcher!.stop();
      await scheduler.stop(Math.min(STOP_GRACE_MAX_MS, maxTimeoutMs + 1_000));
      await publisher.close(STOP_FLUSH_MS);
      await heartbeat.stop();
      await ebpf.stop();
      await clockSync.stop();
      try {
        await nc.drain();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'NATS drain failed; closing');
        await nc.close();
      }
      await endpoint.close();
      log.info({ lastSeq: String(publisher.lastSeq) }, 'prober stopped');
    };
    return { id, httpUrl: endpoint.url, ebpf: () => ebpf.status(), ebpfReady, stop: () => (stopping ??= stop()) };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    throw err;
  }
}

/** Converts an assigned target for the scheduler, repairing (and logging) bad timings. */
export function toScheduled(t: probemesh.v1.ITarget, modules: ProbeModules, log: Logger): ScheduledTarget {
  const url = t.url ?? '';
  const module = t.module ?? '';
  const id = t.id || targetId(module, url);
  let intervalMs = t.intervalMs ?? 0;
  let timeoutMs = t.timeoutMs ?? 0;
  if (intervalMs < MIN_INTERVAL_MS) {
    log.warn({ target: id, interval_ms: intervalMs }, `target interval below ${MIN_INTERVAL_MS}ms; using ${MIN_INTERVAL_MS}ms`);
    intervalMs = MIN_INTERVAL_MS;
  }
  if (timeoutMs <= 0 || timeoutMs >= intervalMs) {
    const fixed = Math.floor(intervalMs * 0.9);
    log.warn({ target: id, timeout_ms: timeoutMs, interval_ms: intervalMs }, `target timeout must be in (0, interval); using ${fixed}ms`);
    timeoutMs = fixed;
  }
  return { id, url, module, intervalMs, timeoutMs: modules.effectiveTimeoutMs(module, timeoutMs), labels: { ...(t.labels ?? {}) } };
}

/** Opens a KV bucket, retrying once: two services creating it at once may race. */
async function openKvRetry(nc: NatsConnection, bucket: string): Promise<KV> {
  try {
    return await openKv(nc, bucket);
  } catch {
    return openKv(nc, bucket);
  }
}
