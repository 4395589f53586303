/**
 * Wires an aggregator together: NATS + the PM_RESULTS stream, membership and prober
 * ownership (one consumer per prober subject), the remote_write clients and queues,
 * the series model, stale markers, clock skew and the /metrics endpoint.
 */
import { NatsConnection } from 'nats';
import { AnchoredClock, Clock, ConfigError, connectNats, createLogger, describeError, ensureResultsStream, Logger, resultsSubject, serveHttp } from '@probemesh/common';
import { AggregatorConfig } from './config';
import { proberConsumerName, ResultsConsumer } from './consumer';
import { createAggregatorMetrics, recordAttempt } from './metrics';
import { AggregatorMembership, handoffBarrier, ProberAssignments, streamProbers } from './ownership';
import { ResultPipeline } from './pipeline';
import { realSleep, RemoteWriteClient, Sleep } from './remote-write';
import { SeriesModel } from './series-model';
import { SkewMonitor } from './skew';
import { StaleMarkers } from './staleness';

/** A running aggregator. */
export interface RunningAggregator {
  /** Aggregator id. */
  id: string;
  /** Base URL of its HTTP endpoint (/metrics). */
  httpUrl: string;
  /** Prober subjects this aggregator consumes now. */
  ownedProbers(): string[];
  /** Stops pulling, flushes or abandons (unacked) what is held, drains NATS, closes HTTP. */
  stop(): Promise<void>;
}

/** Injected dependencies of {@link startAggregator}. */
export interface AggregatorDeps {
  /** Logger. @default createLogger('aggregator', config.id, config.log.level) */
  log?: Logger;
  /** Clock. @default new AnchoredClock() */
  clock?: Clock;
  /** HTTP client of the remote_write clients. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Backoff sleeper of the remote_write clients (tests). */
  sleep?: Sleep;
  /** How long stop() lets held batches flush before abandoning them. @default 5000 */
  stopGraceMs?: number;
  /** How often the consumers' num_pending is refreshed, ms. @default 5000 */
  pendingRefreshMs?: number;
  /** How long one pull waits for messages, ms. @default 2000 */
  pullExpiresMs?: number;
  /** Delay between a target change and its stale markers, ms. @default 5000 */
  staleGraceMs?: number;
}

/** Starts an aggregator; resolves once it is consuming and serving /metrics. */
export async function startAggregator(config: AggregatorConfig, deps: AggregatorDeps = {}): Promise<RunningAggregator> {
  const log = deps.log ?? createLogger('aggregator', config.id, config.log.level);
  const clock = deps.clock ?? new AnchoredClock();
  const metrics = createAggregatorMetrics(clock);
  const nc: NatsConnection = await connectNats(config.nats, `probemesh-aggregator-${config.id}`, log);
  let http: Awaited<ReturnType<typeof serveHttp>> | undefined;
  try {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    await ensureResultsStream(jsm, config.stream);
    const endpoints = config.remote_write.map((rw) => {
      const client: RemoteWriteClient = new RemoteWriteClient(rw, {
        fetch: deps.fetch,
        sleep: deps.sleep,
        nowMs: () => clock.nowMs(),
        onAttempt: (a) => {
          recordAttempt(metrics, client.endpoint, a);
          if (!a.ok && a.retryable && a.reason !== 'aborted') {
            log.warn({ endpoint: client.endpoint, status: a.status, reason: a.reason, detail: a.detail, attempt: a.attempt }, 'remote_write failed; retrying');
          }
        },
      });
      return client;
    });
    const names = endpoints.map((e) => e.endpoint);
    if (new Set(names).size !== names.length) throw new ConfigError('aggregator', [{ path: 'remote_write', message: `endpoint names must be unique (got ${names.join(', ')}); set name:` }]);
    const wantsNative = config.remote_write.some((rw) => rw.native_histograms !== 'never');
    let evictWarned = false;
    const model = new SeriesModel({
      job: config.job,
      buckets: config.series.histogram_buckets,
      jitterWindow: config.series.jitter_window,
      maxSeries: config.series.max_series,
      // Forgetting series that are still written means re-encoding them and restarting their
      // histograms: the scale bench found it costing most of an aggregator's CPU. Say so once.
      onEvict: (n) => {
        if (evictWarned) return;
        evictWarned = true;
        log.warn({ evicted: n, max_series: config.series.max_series }, 'series.max_series reached: forgetting the oldest series (an HTTP result makes 30–45 series per target and prober); raise series.max_series if this repeats');
      },
      native: wantsNative ? { schema: config.series.native_histogram_schema, zeroThreshold: config.series.native_histogram_zero_threshold, maxBuckets: config.series.native_histogram_max_buckets } : null,
    });
    const skew = new SkewMonitor(metrics, log.child({ component: 'skew' }), config.skew_threshold);
    const pipeline = new ResultPipeline({
      endpoints,
      model,
      fetchBatch: config.consumer.fetch_batch,
      maxBufferedSamples: config.consumer.max_buffered_samples,
      workingIntervalMs: Math.max(250, Math.floor(config.consumer.ack_wait / 3)),
      metrics,
      log: log.child({ component: 'pipeline' }),
      clock,
      onDelivery: (d) => skew.observe(d),
    });
    const membership = new AggregatorMembership(nc, config.id, config.ownership, log.child({ component: 'membership' }));
    const pullExpiresMs = deps.pullExpiresMs ?? 2000;
    const consumers = new Map<string, ResultsConsumer>();
    const consumerLog = log.child({ component: 'consumer' });
    const assignments = new ProberAssignments(
      membership,
      () => streamProbers(jsm),
      {
        async acquire(prober, signal) {
          const c = await ResultsConsumer.open(js, jsm, config.consumer, consumerLog.child({ prober }), {
            name: proberConsumerName(config.consumer.durable, prober),
            filterSubject: resultsSubject(prober),
            pullExpiresMs,
            onDropped: (reason) => metrics.messagesDropped.inc({ reason }),
          });
          const released = membership.waitReleased(prober, signal);
          // Let a previous owner's last pull end before judging what it still holds.
          if (membership.members().length > 1) await realSleep(pullExpiresMs + 500, signal);
          const gate = await handoffBarrier(async () => (await c.pending()).numAckPending, config.consumer.ack_wait, signal, released);
          if (gate === 'aborted') return;
          if (gate === 'expired') consumerLog.info({ prober }, 'previous owner did not finish its messages in ack_wait; taking over (they are redelivered first)');
          consumers.set(prober, c);
          pipeline.attach(prober, c);
          metrics.ownedProbers.set(pipeline.attached().length);
        },
        async release(prober) {
          await pipeline.detach(prober);
          consumers.delete(prober);
          membership.announceReleased(prober);
          metrics.ownedProbers.set(pipeline.attached().length);
        },
      },
      config.ownership.discovery_interval,
      log.child({ component: 'ownership' }),
    );
    const stale = config.series.stale_markers
      ? new StaleMarkers({ nc, model, emit: (s) => pipeline.addStale(s), metrics, log: log.child({ component: 'stale' }), nowMs: () => clock.nowMs(), graceMs: deps.staleGraceMs })
      : undefined;
    http = await serveHttp(config.http, metrics.registry, log);
    membership.start();
    // Hear the other aggregators before claiming probers, so a start next to running
    // aggregators does not briefly pull what they own.
    await realSleep(config.ownership.heartbeat_interval * 2 + 100);
    await assignments.start();
    stale?.start();

    const refreshPending = async () => {
      let total = 0;
      for (const c of consumers.values()) total += (await c.pending().catch(() => ({ numPending: 0 }))).numPending;
      metrics.pendingMessages.set(total);
      metrics.aggregators.set(membership.members().length);
    };
    void refreshPending();
    const pendingTimer = setInterval(() => void refreshPending(), deps.pendingRefreshMs ?? 5000);
    pendingTimer.unref();

    log.info({ http: http.url, endpoints: names, durable: config.consumer.durable }, 'aggregator started');
    const server = http;
    let stopping: Promise<void> | undefined;
    return {
      id: config.id,
      httpUrl: server.url,
      ownedProbers: () => assignments.ownedProbers(),
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(pendingTimer);
          await stale?.stop();
          await assignments.stop();
          // Leave first (the others start their handoff barrier), flush what is held,
          // nak the rest, then say so, so the new owners start at once.
          await membership.stop();
          const owned = pipeline.attached();
          await pipeline.stop(deps.stopGraceMs ?? 5000);
          for (const p of owned) membership.announceReleased(p);
          await nc.flush().catch(() => undefined);
          await nc.drain().catch((err) => log.warn({ err: describeError(err) }, 'nats drain failed'));
          await server.close();
          log.info('aggregator stopped');
        })()),
    };
  } catch (err) {
    await http?.close();
    await nc.close().catch(() => undefined);
    throw err;
  }
}
