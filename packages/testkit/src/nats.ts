/**
 * A real nats-server per test (single node or a JetStream cluster), on loopback random
 * ports, stopped by PID. Like nats.js's `nst` test harness, minus the mocks.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './binaries';
import { launch, retryOnAddressInUse } from './launch';
import { freePort, httpGet, removeDir, tempDir } from './net';
import { ChildProc, Procs } from './procs';

/** A nats-server started by the harness. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** Client port. */
  readonly port: number;
  /** HTTP monitoring port (`/healthz`, `/varz`, `/jsz`). */
  readonly monitorPort: number;
  /** `http://127.0.0.1:<monitorPort>` */
  readonly monitorUrl: string;
  /** server_name. */
  readonly name: string;
  /** PID of the current process (a new one after {@link NatsServer.restart}). */
  readonly pid: number;
  /** Directory holding its config and JetStream store. */
  readonly dir: string;
  /** Whether the current process is still running. */
  running(): boolean;
  /** Last output of the current process. */
  output(): string;
  /** Sends `signal` to the current process by PID (e.g. SIGKILL to simulate a crash). @default 'SIGKILL' */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the process (SIGTERM, SIGKILL after 5 s) but keeps its dir, so {@link NatsServer.restart} can follow. */
  shutdown(): Promise<void>;
  /** Stops the process if running, then starts it again on the same ports and store dir. */
  restart(): Promise<void>;
  /** Stops the process and removes its directory (when the harness created it). */
  stop(): Promise<void>;
}

/** Options of {@link startNats}. */
export interface StartNatsOptions {
  /** Enable JetStream. @default true */
  jetstream?: boolean;
  /** Extra nats-server arguments. */
  extraArgs?: string[];
  /** Track the process here. */
  procs?: Procs;
  /** @default 20000 */
  startTimeoutMs?: number;
}

interface NodeSpec {
  name: string;
  port: number;
  monitorPort: number;
  dir: string;
  /** Remove `dir` on stop (false for cluster nodes: the cluster owns the parent dir). */
  ownsDir: boolean;
  args: string[];
  procs?: Procs;
  startTimeoutMs: number;
}

const NATS_PACKAGE = 'nats-server';

/** The monitor's /healthz answers 200 (with JetStream enabled this includes JetStream health). */
async function healthy(monitorUrl: string): Promise<boolean> {
  const r = await httpGet(`${monitorUrl}/healthz`, 1_000);
  if (r.status !== 200) throw new Error(`/healthz ${r.status}: ${r.body.trim()}`);
  return true;
}

class NatsNode implements NatsServer {
  readonly url: string;
  readonly monitorUrl: string;
  private proc!: ChildProc;
  private removed = false;

  constructor(
    private readonly binary: string,
    private readonly spec: NodeSpec,
  ) {
    this.url = `nats://127.0.0.1:${spec.port}`;
    this.monitorUrl = `http://127.0.0.1:${spec.monitorPort}`;
  }

  get port(): number {
    return this.spec.port;
  }
  get monitorPort(): number {
    return this.spec.monitorPort;
  }
  get name(): string {
    return this.spec.name;
  }
  get dir(): string {
    return this.spec.dir;
  }
  get pid(): number {
    return this.proc.pid;
  }

  /** Starts the process; `waitHealthy` false for cluster nodes, whose /healthz needs the peers. */
  async start(waitHealthy = true): Promise<void> {
    this.proc = await launch({
      name: `nats-server[${this.spec.name}]`,
      cmd: this.binary,
      args: this.spec.args,
      cwd: this.spec.dir,
      procs: this.spec.procs,
      timeoutMs: this.spec.startTimeoutMs,
      ready: waitHealthy ? () => healthy(this.monitorUrl) : async () => (await httpGet(`${this.monitorUrl}/varz`, 1_000)).status === 200,
    });
  }

  running(): boolean {
    return this.proc.exitInfo() === undefined;
  }
  output(): string {
    return this.proc.output();
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc.kill(signal);
  }
  async shutdown(): Promise<void> {
    await this.proc.stop(5_000);
  }
  async restart(waitHealthy = true): Promise<void> {
    if (this.removed) throw new Error(`nats-server ${this.name} was stopped and its dir removed; start a new one`);
    await this.shutdown();
    await this.start(waitHealthy);
  }
  async stop(): Promise<void> {
    await this.shutdown();
    if (this.spec.ownsDir && !this.removed) await removeDir(this.spec.dir);
    this.removed = true;
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts `nats-server -js -a 127.0.0.1 -p <port> -sd <dir> -m <monitor>` and waits for
 * `/healthz`. Throws MissingBinaryError (naming the Debian package) if nats-server is not
 * installed, ServerStartError (with the server's output) if it does not come up.
 */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  const binary = findBinary('nats-server', NATS_PACKAGE);
  const dir = await tempDir('nats');
  try {
    return await retryOnAddressInUse(async () => {
      const [port, monitorPort] = [await freePort(), await freePort()];
      const name = `pm-test-${port}`;
      const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-n', name, '-sd', join(dir, 'jetstream')];
      if (opts.jetstream ?? true) args.unshift('-js');
      args.push(...(opts.extraArgs ?? []));
      const node = new NatsNode(binary, { name, port, monitorPort, dir, ownsDir: true, args, procs: opts.procs, startTimeoutMs: opts.startTimeoutMs ?? 20_000 });
      await node.start();
      return node;
    });
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

/** A JetStream cluster of nats-servers started by {@link startNatsCluster}. */
export interface NatsCluster extends AsyncDisposable {
  /** Client URLs, one per node (index = node index). */
  readonly urls: string[];
  /** The nodes; kill / shutdown / restart one to test failover. */
  readonly nodes: NatsServer[];
  /** Parent dir of the nodes' config files and stores. */
  readonly dir: string;
  /**
   * Waits until the running nodes agree on a JetStream meta leader, and every
   * peer of the leader is current; returns the leader's server_name.
   */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Restarts node `i` (same ports and store) and waits for the cluster to settle again. */
  restartNode(i: number): Promise<void>;
  /** Stops all nodes and removes the dir. */
  stop(): Promise<void>;
}

/** Options of {@link startNatsCluster}. */
export interface StartNatsClusterOptions {
  /** Track the processes here. */
  procs?: Procs;
  /** Extra lines appended to every node's config file. */
  extraConfig?: string;
  /** JetStream file store limit per node (nats-server size syntax). @default "2GB" */
  maxFileStore?: string;
  /** @default 30000 */
  startTimeoutMs?: number;
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number; replicas?: { name: string; current: boolean; offline?: boolean }[] };
}

/**
 * Starts `n` nats-servers with JetStream, clustered over loopback routes, each with its own
 * config file (`<dir>/<name>.conf`) and store, and waits until a meta leader is elected.
 */
export async function startNatsCluster(n = 3, opts: StartNatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`startNatsCluster: n must be a positive integer, got ${n}`);
  if (opts.maxFileStore !== undefined && !/^\d+(K|M|G|T)?B?$/i.test(opts.maxFileStore)) throw new RangeError(`startNatsCluster: maxFileStore must be a size like "8GB", got ${JSON.stringify(opts.maxFileStore)}`);
  const binary = findBinary('nats-server', NATS_PACKAGE);
  const dir = await tempDir('nats-cluster');
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  try {
    return await retryOnAddressInUse(async () => {
      const ports: { client: number; monitor: number; route: number }[] = [];
      for (let i = 0; i < n; i++) ports.push({ client: await freePort(), monitor: await freePort(), route: await freePort() });
      const clusterName = `pm-test-${ports[0]?.client}`;
      const nodes: NatsNode[] = [];
      for (let i = 0; i < n; i++) {
        const p = ports[i]!;
        const name = `n${i + 1}`;
        const routes = ports.filter((_, j) => j !== i).map((q) => `"nats-route://127.0.0.1:${q.route}"`);
        const conf = join(dir, `${name}.conf`);
        await writeFile(
          conf,
          [
            `server_name: "${name}"`,
            `listen: "127.0.0.1:${p.client}"`,
            `http: "127.0.0.1:${p.monitor}"`,
            `jetstream { store_dir: "${join(dir, name)}", max_memory_store: 256MB, max_file_store: ${opts.maxFileStore ?? '2GB'} }`,
            `cluster {`,
            `  name: "${clusterName}"`,
            `  listen: "127.0.0.1:${p.route}"`,
            `  routes: [${routes.join(', ')}]`,
            `}`,
            opts.extraConfig ?? '',
            '',
          ].join('\n'),
        );
        nodes.push(new NatsNode(binary, { name, port: p.client, monitorPort: p.monitor, dir, ownsDir: false, args: ['-c', conf], procs: opts.procs, startTimeoutMs: timeoutMs }));
      }
      try {
        // Let every start settle before cleaning up: shutting down while a sibling is
        // still starting would miss its process and leak it.
        const started = await Promise.allSettled(nodes.map((node) => node.start(false)));
        const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        const cluster = new Cluster(nodes, dir);
        await cluster.waitForMetaLeader(timeoutMs);
        return cluster;
      } catch (err) {
        await Promise.all(nodes.map((node) => node.shutdown().catch(() => undefined)));
        throw err;
      }
    });
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

class Cluster implements NatsCluster {
  readonly urls: string[];
  constructor(
    private readonly natsNodes: NatsNode[],
    readonly dir: string,
  ) {
    this.urls = natsNodes.map((node) => node.url);
  }

  get nodes(): NatsServer[] {
    return this.natsNodes;
  }

  async waitForMetaLeader(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      const live = this.natsNodes.filter((node) => node.running());
      try {
        const views = await Promise.all(
          live.map(async (node) => {
            const r = await httpGet(`${node.monitorUrl}/jsz`, 1_000);
            if (r.status !== 200) throw new Error(`${node.name} /jsz ${r.status}`);
            return { node, jsz: JSON.parse(r.body) as Jsz };
          }),
        );
        const leaders = new Set(views.map((v) => v.jsz.meta_cluster?.leader ?? ''));
        const leader = [...leaders][0] ?? '';
        const lv = views.find((v) => v.node.name === leader);
        const peers = lv?.jsz.meta_cluster?.replicas ?? [];
        const livePeers = live.filter((node) => node.name !== leader).map((node) => node.name);
        const peersCurrent = livePeers.every((name) => peers.some((p) => p.name === name && p.current && !p.offline));
        if (leaders.size === 1 && leader !== '' && lv !== undefined && peersCurrent) {
          await Promise.all(live.map((node) => healthy(node.monitorUrl)));
          return leader;
        }
        last = `leaders seen: ${JSON.stringify([...leaders])}, leader's peers: ${JSON.stringify(peers)}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        const outputs = live.map((node) => `--- ${node.name} ---\n${node.output().trim().split('\n').slice(-10).join('\n')}`).join('\n');
        throw new Error(`timed out after ${timeoutMs}ms waiting for a JetStream meta leader; last: ${last}\n${outputs}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async restartNode(i: number): Promise<void> {
    const node = this.natsNodes[i];
    if (node === undefined) throw new RangeError(`no node ${i} (cluster has ${this.natsNodes.length})`);
    await node.restart(false);
    await this.waitForMetaLeader();
  }

  async stop(): Promise<void> {
    await Promise.all(this.natsNodes.map((node) => node.stop()));
    await removeDir(this.dir);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
