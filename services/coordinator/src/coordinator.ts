/**
 * Wiring of a coordinator: NATS, the results stream, the target registry, membership,
 * the leader lease, the assignment publisher (leader only), the gRPC AdminService
 * (standbys forward to the leader) and /metrics. Standbys keep targets and
 * membership warm, so a takeover publishes within one rebalance delay.
 */
import { AnchoredClock, Clock, connectNats, createLogger, ensureResultsStream, KV_PROBERS, Logger, openKv, serveHttp } from '@probemesh/common';
import type { NatsConnection } from 'nats';
import { Registry } from 'prom-client';
import { createAdminHandlers, proberState, startAdminServer } from './admin';
import { createAnalyzeCanaryHandler } from './canary';
import { AssignmentPublisher, openAssignmentStore } from './assignments';
import { CoordinatorConfig } from './config';
import { CoverageTracker } from './coverage';
import { Subscription } from './feed';
import { withForwarding } from './forward';
import { LeaderLease, openLeaseKv } from './lease';
import { Membership } from './membership';
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
  /** Whether this coordinator leads now. */
  isLeader(): boolean;
  /** The current leadership term as this coordinator knows it. */
  term(): bigint;
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

/** Starts a coordinator; resolves once it serves gRPC and /metrics and made its first bid for the lease. */
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

    const targets = await TargetRegistry.open(nc, { clock, log: log.child({ component: 'targets' }), replicas: config.kv_replicas });
    cleanups.push(() => targets.close());
    const membership = new Membership({ deadAfterMs: config.dead_after, clock, log: log.child({ component: 'membership' }) });
    // Subscribe to changes before anything can happen, so no event is missed.
    const memberChanges = membership.changes();
    const targetChanges = targets.changes();
    cleanups.push(() => membership.stop());

    const registry = new Registry();
    let publisher: AssignmentPublisher | undefined;
    let lease: LeaderLease | undefined;
    let coverage: CoverageTracker | undefined;
    const counters = registerCoordinatorMetrics(registry, {
      proberStates: () => {
        const out: Record<string, number> = { alive: 0, draining: 0, dead: 0, leaving: 0 };
        const draining = publisher?.draining();
        for (const p of membership.list()) out[proberState(p, draining)] = (out[proberState(p, draining)] ?? 0) + 1;
        return out;
      },
      targetCount: () => targets.size,
      targetsPerProber: () => publisher?.assignedCounts() ?? new Map(),
      epoch: () => publisher?.epoch ?? 0n,
      isLeader: () => lease?.isLeader() ?? false,
      term: () => lease?.term ?? 0n,
      uncovered: () => coverage?.size ?? 0,
    });
    await membership.start(nc, config.kv_replicas);

    const admin = await startAdminServer(
      config.grpc.listen,
      withForwarding(
        createAdminHandlers({
          targets,
          membership,
          publisher: () => publisher,
          leader: () => lease?.holder(),
          vnodesPerCapacity: config.vnodes_per_capacity,
          defaults: config.target_defaults,
          analyzeCanary: createAnalyzeCanaryHandler({ settings: config.canary, log: log.child({ component: 'canary' }) }),
          probersKv: await openKv(nc, KV_PROBERS, { replicas: config.kv_replicas }),
          nc,
          log: log.child({ component: 'admin' }),
        }),
        { id: config.id, isLeader: () => lease?.isLeader() ?? false, holder: () => lease?.holder(), clientTls: config.grpc.client_tls, log: log.child({ component: 'forward' }) },
      ).handlers,
      log,
      { tls: config.grpc.tls, auth: config.grpc.auth, audit: log.child({ component: 'audit' }) },
    );
    cleanups.push(() => admin.stop());
    const http = await serveHttp(config.http, registry, log);
    cleanups.push(() => http.close());

    const store = await openAssignmentStore(nc, log, config.kv_replicas);
    const theLease = new LeaderLease({
      kv: await openLeaseKv(nc, config.leader.lease, config.kv_replicas),
      id: config.id,
      grpcAddress: config.grpc.advertise ?? admin.address,
      leaseMs: config.leader.lease,
      renewMs: config.leader.renew_every,
      clock,
      log: log.child({ component: 'lease' }),
    });
    lease = theLease;
    const leadership = theLease.changes();

    // Leadership transitions run one at a time, in order.
    let transition: Promise<void> = Promise.resolve();
    let closing = false;
    const stillLeading = (term: bigint) => !closing && theLease.isLeader() && theLease.term === term;
    const lead = async (term: bigint) => {
      counters.elections.inc();
      coverage = new CoverageTracker(clock, (s) => counters.coverageGap.observe(s));
      // Starting reads pm_assignments, which fails while JetStream recovers (e.g. just
      // after a NATS node restarted). A leader without a publisher would hold the lease
      // and assign nothing for as long as it stays leader: retry while this term lasts.
      for (let attempt = 1; ; attempt++) {
        try {
          publisher = await startPublisher(term);
          if (attempt > 1) log.info({ term: String(term), attempt }, 'assigning (pm_assignments read)');
          return;
        } catch (err) {
          if (!stillLeading(term)) throw err;
          const retryMs = Math.min(2_000, 250 * attempt);
          log.warn({ err: (err as Error).message, term: String(term), attempt, retry_ms: retryMs }, 'leader cannot start assigning (reading pm_assignments failed); retrying');
          await new Promise((r) => setTimeout(r, retryMs));
          if (!stillLeading(term)) return;
        }
      }
    };
    const startPublisher = (term: bigint) =>
      AssignmentPublisher.start({
        coordinatorId: config.id,
        term,
        vnodesPerCapacity: config.vnodes_per_capacity,
        rebalanceDelayMs: config.rebalance_delay,
        // A standby that followed heartbeats for dead_after already knows who is alive.
        startupGraceMs: Math.max(0, config.dead_after - membership.listeningMs()),
        targets: () => targets.list(),
        probers: () => membership.alive(),
        lastSeenNs: (id) => membership.get(id)?.lastSeenMonoNs,
        canPublish: () => theLease.isLeader(),
        store,
        clock,
        log: log.child({ component: 'assignments', term: String(term) }),
        counters,
        coverage,
      });
    const stepDown = async () => {
      const p = publisher;
      publisher = undefined;
      coverage = undefined;
      await p?.stop();
    };
    const leaderLoop = follow(leadership, (ev) => {
      transition = transition.then(() => (ev.kind === 'elected' ? stepDown().then(() => lead(ev.term)) : stepDown())).catch((err) => log.error({ err }, 'leadership transition failed'));
    });
    const loops = [
      follow(memberChanges, (ev) => {
        const pub = publisher;
        if (!pub) return;
        if (ev.kind === 'join') pub.noteJoin(ev.prober);
        else if (ev.kind === 'applied') pub.noteApplied(ev.prober, ev.epoch);
        else pub.schedule(`${ev.kind} ${ev.prober}`);
      }),
      follow(targetChanges, (ev) => publisher?.schedule(`target ${ev.kind} ${ev.kind === 'put' ? ev.target.id : ev.id}`)),
    ];
    await theLease.start();
    cleanups.push(async () => {
      // Stop writing first, then release the lease so a standby takes over at once.
      closing = true;
      await transition;
      await stepDown();
      await theLease.stop();
      await leaderLoop;
      await transition;
      await stepDown();
    });
    cleanups.push(async () => {
      memberChanges.stop();
      targetChanges.stop();
      await Promise.all(loops);
    });

    log.info({ grpc: admin.address, http: http.url, leader: theLease.holder()?.coordinator, term: String(theLease.term), targets: targets.size }, 'coordinator started');
    let stopping: Promise<void> | undefined;
    return {
      id: config.id,
      grpcAddress: admin.address,
      httpUrl: http.url,
      isLeader: () => theLease.isLeader(),
      term: () => theLease.term,
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
