/**
 * A probe mesh on a real 3-node nats-server cluster for the failover tests: streams
 * and KV buckets with 3 replicas, coordinators and probers in-process or as child
 * processes (`node services/cli/dist/main.js prober --config f.yml`, so kill -9 is
 * real), a local HTTP target server, and a {@link ResultLog} fed by an ordered
 * consumer on PM_RESULTS.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createLogger, KV_ASSIGNMENTS, KV_LEADER, KV_PROBERS, KV_TARGETS, loadConfig, Logger, silentLogger, STREAM_RESULTS, SUBJECT_RESULTS, toNumber } from '@probemesh/common';
import { coordinatorConfigSchema, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, RunningProber, startProber } from '@probemesh/prober';
import { probemesh } from '@probemesh/proto';
import { connect, NatsConnection, RetentionPolicy, StorageType } from 'nats';
import { ChildProc, freePort, httpGet, NatsCluster, NatsServer, Procs, startNats, startHttpTargets, startNatsCluster, tempDir, removeDir, HttpTargets, waitFor } from '../harness';

/** The CLI entry point run for child-process services. */
export const CLI = resolve(__dirname, '../../../services/cli/dist/main.js');

/** Timing used by the cluster tests (shorter than the defaults so the suite stays fast). */
export const TIMING = { heartbeat: 500, deadAfter: 1500, rebalance: 100, lease: 3000, renew: 1000 };

/** One result as seen on PM_RESULTS. */
export interface SeenResult {
  targetId: string;
  prober: string;
  /** Probe start, ms since epoch. */
  startMs: number;
  /** When the test received it, ms since epoch. */
  seenMs: number;
  epoch: number;
}

/** Every result published while the log runs, indexed by target. */
export class ResultLog {
  readonly byTarget = new Map<string, SeenResult[]>();
  total = 0;

  add(r: SeenResult): void {
    let l = this.byTarget.get(r.targetId);
    if (!l) this.byTarget.set(r.targetId, (l = []));
    l.push(r);
    this.total++;
  }

  /** Results of `id` (sorted by start) with start in [fromMs, toMs). */
  between(id: string, fromMs: number, toMs = Infinity): SeenResult[] {
    return (this.byTarget.get(id) ?? []).filter((r) => r.startMs >= fromMs && r.startMs < toMs).sort((a, b) => a.startMs - b.startMs);
  }

  /** The prober of the latest result of `id` started before `beforeMs`. */
  ownerAt(id: string, beforeMs = Infinity): string | undefined {
    const l = this.between(id, 0, beforeMs);
    return l.at(-1)?.prober;
  }

  /** Largest time between consecutive result starts of `id` in [fromMs, toMs] (edges included as gaps). */
  maxGap(id: string, fromMs: number, toMs: number): number {
    const starts = this.between(id, 0, Infinity).map((r) => r.startMs);
    let prev = starts.filter((s) => s < fromMs).at(-1) ?? fromMs;
    let max = 0;
    for (const s of starts) {
      if (s < fromMs) continue;
      if (s > toMs) break;
      max = Math.max(max, s - prev);
      prev = s;
    }
    return Math.max(max, Math.min(toMs, Date.now()) - prev);
  }
}

/** A started test mesh. */
export interface Mesh {
  cluster: NatsCluster;
  targets: HttpTargets;
  procs: Procs;
  dir: string;
  results: ResultLog;
  /** A NATS connection of the test itself (all cluster URLs). */
  nc: NatsConnection;
  targetUrls: string[];
  close(): Promise<void>;
}

/** Starts the cluster, creates PM_RESULTS and the KV buckets with 3 replicas, the targets, and the result log. */
export async function startMesh(targetCount: number): Promise<Mesh> {
  const procs = new Procs();
  const dir = await tempDir('pm-cluster');
  const cluster = await startNatsCluster(3, { procs });
  const targets = await startHttpTargets();
  const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: STREAM_RESULTS, subjects: [`${SUBJECT_RESULTS}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: 3, duplicate_window: 120e9, max_age: 3600e9, max_bytes: 1024 * 1024 * 1024 });
  const js = nc.jetstream();
  for (const b of [KV_TARGETS, KV_PROBERS, KV_ASSIGNMENTS, KV_LEADER]) await js.views.kv(b, { history: 1, replicas: 3 });
  const results = new ResultLog();
  // A core subscription sees every batch as the probers publish it and resubscribes by
  // itself after a reconnect; an ordered JetStream consumer placed on a node the test
  // kills can stay silent long after the mesh has recovered.
  const messages = nc.subscribe(`${SUBJECT_RESULTS}.>`);
  const loop = (async () => {
    for await (const m of messages) {
      const batch = probemesh.v1.ResultBatch.decode(m.data);
      const seenMs = Date.now();
      for (const r of batch.results) results.add({ targetId: r.targetId ?? '', prober: r.prober ?? '', startMs: toNumber(r.startUnixNano) / 1e6, seenMs, epoch: toNumber(r.epoch) });
    }
  })();
  const targetUrls = Array.from({ length: targetCount }, (_, i) => `${targets.baseUrl}/ok?t=${i}`);
  return {
    cluster,
    targets,
    procs,
    dir,
    results,
    nc,
    targetUrls,
    async close() {
      messages.unsubscribe();
      await loop.catch(() => undefined);
      await nc.close();
      await procs.stopAll(3_000);
      await targets.close();
      await cluster.stop();
      await removeDir(dir);
    },
  };
}

/** YAML of a prober config. */
export function proberYaml(id: string, zone: string, servers: readonly string[], heartbeatMs = TIMING.heartbeat): string {
  return [
    `id: ${id}`,
    `zone: ${zone}`,
    'region: test',
    `nats:\n  servers: [${servers.map((s) => `"${s}"`).join(', ')}]`,
    'stream:\n  replicas: 3',
    'http:\n  listen: 127.0.0.1:0',
    `heartbeat_interval: ${heartbeatMs}ms`,
    'publish:\n  max_delay: 100ms',
    'ebpf:\n  enabled: false',
    'clock:\n  pmc_path: ""\n  chronyc_path: ""',
    'log:\n  level: warn',
    '',
  ].join('\n');
}

/** YAML of a coordinator config. */
export function coordinatorYaml(id: string, servers: readonly string[], grpcPort: number): string {
  return [
    `id: ${id}`,
    `nats:\n  servers: [${servers.map((s) => `"${s}"`).join(', ')}]`,
    'stream:\n  replicas: 3',
    `grpc:\n  listen: 127.0.0.1:${grpcPort}`,
    'http:\n  listen: 127.0.0.1:0',
    `dead_after: ${TIMING.deadAfter}ms`,
    `rebalance_delay: ${TIMING.rebalance}ms`,
    `leader:\n  lease: ${TIMING.lease}ms\n  renew_every: ${TIMING.renew}ms`,
    'kv_replicas: 3',
    'target_defaults:\n  interval: 1s\n  timeout: 500ms',
    'log:\n  level: warn',
    '',
  ].join('\n');
}

/** Starts a prober as a child process. */
export async function spawnProber(mesh: Mesh, id: string, zone: string, servers = mesh.cluster.urls): Promise<ChildProc> {
  const file = join(mesh.dir, `${id}.yml`);
  await writeFile(file, proberYaml(id, zone, servers));
  return mesh.procs.spawn(process.execPath, [CLI, 'prober', '--config', file], { name: `prober[${id}]` });
}

/** Starts a coordinator as a child process; resolves with it and its gRPC address. */
export async function spawnCoordinator(mesh: Mesh, id: string): Promise<{ child: ChildProc; grpcAddress: string }> {
  const port = await freePort();
  const file = join(mesh.dir, `${id}.yml`);
  await writeFile(file, coordinatorYaml(id, mesh.cluster.urls, port));
  const child = mesh.procs.spawn(process.execPath, [CLI, 'coordinator', '--config', file], { name: `coordinator[${id}]` });
  return { child, grpcAddress: `127.0.0.1:${port}` };
}

/** Starts a prober in this process (logs discarded unless `log` is given). */
export async function inProcessProber(id: string, zone: string, servers: readonly string[], log: Logger = silentLogger()): Promise<RunningProber> {
  return startProber(loadConfig(proberConfigSchema, { text: proberYaml(id, zone, servers) }), { log });
}

/** Starts a coordinator in this process (logs discarded unless `log` is given). */
export async function inProcessCoordinator(id: string, servers: readonly string[], log: Logger = silentLogger()): Promise<RunningCoordinator> {
  return startCoordinator(loadConfig(coordinatorConfigSchema, { text: coordinatorYaml(id, servers, 0) }), { log });
}

/** A logger that keeps its last `keep` lines in memory, to show when a step fails. */
export function keptLogger(service: string, id: string, level = 'info', keep = 400): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger(service, id, level, {
    write(line: string) {
      lines.push(line.trimEnd());
      if (lines.length > keep) lines.splice(0, lines.length - keep);
    },
  });
  return { log, lines };
}

/** Waits until every target of `ids` has a result started at or after `sinceMs`; returns the owner map. */
export async function waitAllFresh(mesh: Mesh, ids: readonly string[], sinceMs: number, timeoutMs = 20_000): Promise<Map<string, string>> {
  try {
    return await waitFor(
      () => {
        const owners = new Map<string, string>();
        for (const id of ids) {
          const r = mesh.results.between(id, sinceMs).at(-1);
          if (!r) return undefined;
          owners.set(id, r.prober);
        }
        return owners;
      },
      { timeoutMs, intervalMs: 100, what: `fresh results for all ${ids.length} targets` },
    );
  } catch (err) {
    const missing = ids.filter((id) => mesh.results.between(id, sinceMs).length === 0);
    const lastOwner = new Map<string, number>();
    for (const id of missing) {
      const o = mesh.results.ownerAt(id) ?? 'none';
      lastOwner.set(o, (lastOwner.get(o) ?? 0) + 1);
    }
    const lastSeen: Record<string, number> = {};
    for (const l of mesh.results.byTarget.values()) for (const r of l) lastSeen[r.prober] = Math.max(lastSeen[r.prober] ?? 0, r.seenMs);
    const ago = Object.fromEntries(Object.entries(lastSeen).map(([p, t]) => [p, Date.now() - t]));
    throw new Error(`${(err as Error).message}; ${missing.length} missing, by last owner ${JSON.stringify(Object.fromEntries(lastOwner))}; ms since last result per prober ${JSON.stringify(ago)}`);
  }
}

/** Median and max of numbers. */
export function stats(xs: readonly number[]): { n: number; median: number; p95: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, median: q(0.5), p95: q(0.95), max: s.at(-1) ?? NaN };
}

/**
 * A 4th cluster member without JetStream and with `--no_advertise`: its clients learn
 * no other server, so a client connected only to it is really cut off from NATS when
 * it dies (with discovery, nats.js would just reconnect to another node). Resolves once
 * it has routes to the three members.
 */
export async function startIsolatedNode(mesh: Mesh): Promise<NatsServer> {
  const conf = await readFile(join(mesh.cluster.dir, 'n1.conf'), 'utf8');
  const clusterName = /name: "([^"]+)"/.exec(conf.slice(conf.indexOf('cluster')))?.[1];
  const routes = [1, 2, 3].map(async (i) => /cluster \{[\s\S]*?listen: "([^"]+)"/.exec(await readFile(join(mesh.cluster.dir, `n${i}.conf`), 'utf8'))?.[1]);
  const routeUrls = (await Promise.all(routes)).map((r) => `nats-route://${r}`).join(',');
  const routePort = await freePort();
  const node = await startNats({ jetstream: false, procs: mesh.procs, extraArgs: ['--cluster_name', clusterName ?? '', '--cluster', `nats://127.0.0.1:${routePort}`, '--routes', routeUrls, '--no_advertise'] });
  // Healthy is not connected: until it has a route to every member, a request it
  // forwards (JetStream API, KV) may reach no server that answers, and times out.
  await waitFor(
    async () => {
      const r = await httpGet(`${node.monitorUrl}/routez`, 1_000);
      const peers = r.status === 200 ? ((JSON.parse(r.body) as { routes?: { remote_id: string }[] }).routes ?? []) : [];
      return new Set(peers.map((x) => x.remote_id)).size >= 3;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `the isolated node's routes to the 3 cluster members` },
  );
  return node;
}
