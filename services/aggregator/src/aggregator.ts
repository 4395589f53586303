/**
 * Wires an aggregator together: NATS + the PM_RESULTS stream, the shared durable
 * consumer, the remote_write clients, the pipeline and the /metrics endpoint.
 */
import { NatsConnection } from 'nats';
import { AnchoredClock, Clock, connectNats, createLogger, describeError, ensureResultsStream, Logger, serveHttp } from '@probemesh/common';
import { AggregatorConfig } from './config';
import { ResultsConsumer } from './consumer';
import { createAggregatorMetrics, recordAttempt } from './metrics';
import { ResultPipeline } from './pipeline';
import { RemoteWriteClient, Sleep } from './remote-write';

/** A running aggregator. */
export interface RunningAggregator {
  /** Aggregator id. */
  id: string;
  /** Base URL of its HTTP endpoint (/metrics). */
  httpUrl: string;
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
  /** How often the consumer's num_pending is refreshed, ms. @default 5000 */
  pendingRefreshMs?: number;
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
    await ensureResultsStream(jsm, config.stream);
    const consumer = await ResultsConsumer.open(nc.jetstream(), jsm, config.consumer, log.child({ component: 'consumer' }), {
      onDropped: (reason) => metrics.messagesDropped.inc({ reason }),
    });
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
    const pipeline = new ResultPipeline({
      source: consumer,
      endpoints,
      job: config.job,
      fetchBatch: config.consumer.fetch_batch,
      workingIntervalMs: Math.max(500, Math.floor(config.consumer.ack_wait / 3)),
      metrics,
      log: log.child({ component: 'pipeline' }),
      clock,
    });
    http = await serveHttp(config.http.listen, metrics.registry, log);
    pipeline.start();

    const refreshPending = () =>
      consumer.pending().then(
        (p) => metrics.pendingMessages.set(p.numPending),
        (err) => log.debug({ err: describeError(err) }, 'consumer info failed'),
      );
    void refreshPending();
    const pendingTimer = setInterval(() => void refreshPending(), deps.pendingRefreshMs ?? 5000);
    pendingTimer.unref();

    log.info({ http: http.url, endpoints: endpoints.map((e) => e.endpoint), durable: config.consumer.durable }, 'aggregator started');
    const server = http;
    let stopping: Promise<void> | undefined;
    return {
      id: config.id,
      httpUrl: server.url,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(pendingTimer);
          await pipeline.stop(deps.stopGraceMs ?? 5000);
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
