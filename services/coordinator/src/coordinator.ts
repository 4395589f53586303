/**
 * Wiring of a coordinator: NATS, the results stream, the target registry, membership,
 * the assignment publisher, the gRPC AdminService and /metrics. Every coordinator
 * currently acts as the leader; the KV `pm_leader` lease will gate the publisher.
 */
import { AnchoredClock, Clock, connectNats, createLogger, ensureResultsStream, Logger, serveHttp } from '@probemesh/common';
import type { NatsConnection } from 'nats';
import { Registry } from 'prom-client';
import { startAdminServer } from './admin';
import { createAdminHandlers } from './admin';
import { AssignmentPublisher, openAssignmentStore } from './assignments';
import { CoordinatorConfig } from './config';
import { Subscription } from './feed';
import { Membership, ProberState } from './membership';
import { registerCoordinatorMetrics } from './metrics';
import { TargetRegistry } from './targets';

/** A started coordinator. */
export interface RunningCoordinator {
  /** Coordinator id (config `id`). */
  id: string;
  /** `host:port` of the gRPC AdminService actually bound (wildcard shown as 127.0.0.1). */
  grpcAddress: string;
  /** Base URL of the HTTP endpoint (`/metrics`). */
  httpUrl: string;
  /** Stops serving, cancels timers, drains NATS. */
  stop(): Promise<void>;
}

/** Optional injected dependencies. */
export interface CoordinatorDeps {
  /** Root logger. @default createLogger('coordinator', config.id, config.log.level) */
  log?: Logger;
  /** Time source. @default new AnchoredClock() */
  clock?: Clock;
}

/** Starts a coordinator; resolves once it serves gRPC and /metrics. */
export async function startCoordinator(config: CoordinatorConfig, deps: CoordinatorDeps = {}): Promise<RunningCoordinator> {
  const log = deps.log ?? createLogger('coordinator', config.id, config.log.level);
  const clock = deps.clock ?? new AnchoredClock();
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'error while stopping');
      }
    }
  };
  try {
    const nc: NatsConnection = await connectNats(config.nats, `probemesh-coordinator-${config.id}`, log);
    cleanups.push(async () => {
      if (!nc.isClosed()) await nc.drain();
    });
    await ensureResultsStream(await nc.jetstreamManager(), config.stream);

    const targets = await TargetRegistry.open(nc, { clock, log: log.child({ component: 'targets' }) });
    cleanups.push(() => targets.close());
    const membership = new Membership({ deadAfterMs: config.dead_after, clock, log: log.child({ component: 'membership' }) });
    // Subscribe to changes before anything can happen, so no event is missed.
    const memberChanges = membership.changes();
    const targetChanges = targets.changes();
    cleanups.push(() => membership.stop());

    const registry = new Registry();
    let publisher: AssignmentPublisher | undefined;
    const counters = registerCoordinatorMetrics(registry, {
      proberStates: () => {
        const out: Record<ProberState, number> = { alive: 0, dead: 0, leaving: 0 };
        for (const p of membership.list()) out[p.state]++;
        return out;
      },
      targetCount: () => targets.size,
      targetsPerProber: () => publisher?.assignedCounts() ?? new Map(),
      epoch: () => publisher?.epoch ?? 0n,
      isLeader: () => true,
    });

    await membership.start(nc);
    const pub = await AssignmentPublisher.start({
      coordinatorId: config.id,
      vnodesPerCapacity: config.vnodes_per_capacity,
      rebalanceDelayMs: config.rebalance_delay,
      startupGraceMs: config.dead_after,
      targets: () => targets.list(),
      probers: () => membership.alive(),
      store: await openAssignmentStore(nc, log),
      clock,
      log: log.child({ component: 'assignments' }),
      counters,
    });
    publisher = pub;
    cleanups.push(() => pub.stop());

    const loops = [
      follow(memberChanges, (ev) => (ev.kind === 'join' ? pub.noteJoin(ev.prober) : pub.schedule(`${ev.kind} ${ev.prober}`))),
      follow(targetChanges, (ev) => pub.schedule(`target ${ev.kind} ${ev.kind === 'put' ? ev.target.id : ev.id}`)),
    ];
    cleanups.push(async () => {
      memberChanges.stop();
      targetChanges.stop();
      await Promise.all(loops);
    });

    const admin = await startAdminServer(
      config.grpc.listen,
      createAdminHandlers({ targets, membership, assignments: pub, defaults: config.target_defaults, log: log.child({ component: 'admin' }) }),
      log,
    );
    cleanups.push(() => admin.stop());
    const http = await serveHttp(config.http.listen, registry, log);
    cleanups.push(() => http.close());

    log.info({ grpc: admin.address, http: http.url, epoch: String(pub.epoch), targets: targets.size }, 'coordinator started');
    let stopping: Promise<void> | undefined;
    return {
      id: config.id,
      grpcAddress: admin.address,
      httpUrl: http.url,
      stop: () => (stopping ??= cleanup().then(() => log.info('coordinator stopped'))),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function follow<T>(sub: Subscription<T>, fn: (ev: T) => void): Promise<void> {
  for await (const ev of sub) fn(ev);
}
