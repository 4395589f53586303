/**
 * `probemesh up`: the whole mesh on one machine. Starts nats-server (JetStream, data in
 * the state dir), Prometheus with the remote-write receiver, one coordinator, three
 * probers (zones a, b, c) and one aggregator as child processes, loads the targets
 * (a built-in demo set when no file is given), prints where to look, and stops every
 * child on SIGINT/SIGTERM.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { describeError, duration, ErrorCodes, list, loadConfig, obj, optional, ProbemeshError, record, str, num } from '@probemesh/common';
import { ChildSet, findBinary } from './children';
import { Command, parse } from './command';
import { startDemoTargets } from './demo';
import { withAdmin } from './admin';
import { UsageError } from './errors';

/** A `--targets` file: the targets `up` loads. */
export const upTargetsSchema = obj({
  targets: list(
    obj({
      url: str({ nonEmpty: true, doc: 'URL to probe.' }),
      module: str({ default: 'http_2xx', doc: 'Probe module.' }),
      interval: duration({ default: '5s', doc: 'Probe interval.' }),
      timeout: optional(duration({ doc: 'Probe timeout (default: the coordinator default, below the interval).' })),
      replication: num({ int: true, min: 1, default: 1, doc: 'Replication factor.' }),
      labels: record(str(), { default: {}, doc: 'Target labels.' }),
    }),
    { minItems: 1 },
  ),
});

const ZONES = ['a', 'b', 'c'];

interface Ports {
  nats: number;
  prometheus: number;
  grpc: number;
  coordinatorHttp: number;
  aggregatorHttp: number;
  probers: number[];
}

const DEFAULT_PORTS: Ports = { nats: 4222, prometheus: 9090, grpc: 50051, coordinatorHttp: 9117, aggregatorHttp: 9116, probers: [9115, 9125, 9135] };

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** The kernel's ephemeral port range (source ports of outgoing connections); Linux default if unreadable. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo! > 0 && hi! >= lo!) return [lo!, hi!];
  } catch {
    // not Linux
  }
  return [32768, 60999];
}

/**
 * `n` distinct ports free on 127.0.0.1 now, for --random-ports. Drawn below the ephemeral
 * range when there is room (10000 up to it): a port from bind(0) is an ephemeral port, and
 * between our check and the child's bind any process's outgoing connection can take it
 * as its source port (Prometheus once failed to start that way). Ports are still only
 * free when checked: startUp retries on a clash.
 */
export async function pickPorts(n: number): Promise<number[]> {
  const [lo] = ephemeralRange();
  const base = 10_000;
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < 50 * n; tries++) {
    const p = lo - base >= 1000 ? base + Math.floor(Math.random() * (lo - base)) : await freePort();
    if (!out.includes(p) && !(await portInUse(p))) out.push(p);
  }
  if (out.length < n) throw new ProbemeshError(ErrorCodes.DEPENDENCY_MISSING, `up: found only ${out.length} of ${n} free ports on 127.0.0.1`);
  return out;
}

/** Whether a child's log says its listen address was taken. */
export function addressInUse(log: string): boolean {
  return /address already in use|EADDRINUSE/i.test(log);
}

async function portInUse(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(true));
    s.listen(port, '127.0.0.1', () => s.close(() => res(false)));
  });
}

/**
 * Polls `check` until it holds; fails at once if a child has died (`dead` says which; the
 * message names that child, and `what` only as what was being waited for). A child is
 * checked again after `check` holds: a listener that answered may be another process on
 * a port the child failed to bind.
 */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, dead: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) => new ProbemeshError(ErrorCodes.DEPENDENCY_MISSING, `${why} (while waiting for ${what})`);
  for (;;) {
    const d = dead();
    if (d) throw fail(d);
    if (await check().catch(() => false)) {
      const after = dead();
      if (after) throw fail(after);
      return;
    }
    if (Date.now() > deadline) throw new ProbemeshError(ErrorCodes.DEPENDENCY_MISSING, `timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
    s.connect(port, '127.0.0.1');
  });
}

async function httpOk(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.ok;
}

const yamlList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/**
 * Starts nats-server, Prometheus, the coordinator, the aggregator and the three probers
 * on `ports` and waits until each is ready; throws (naming the child) if one dies first.
 */
async function startChildren(children: ChildSet, ports: Ports, o: { dir: string; natsBin: string; promBin: string; cli: string }, deadChild: () => string | undefined): Promise<void> {
  const natsUrl = `nats://127.0.0.1:${ports.nats}`;
  const grpcAddr = `127.0.0.1:${ports.grpc}`;
  const promUrl = `http://127.0.0.1:${ports.prometheus}`;
  children.start('nats', o.natsBin, ['-js', '-a', '127.0.0.1', '-p', String(ports.nats), '-sd', join(o.dir, 'nats'), '-n', 'probemesh-local'], { dieWithParent: true });
  const proberTargets = ports.probers.map((p) => `"127.0.0.1:${p}"`).join(', ');
  const promConfig = join(o.dir, 'config', 'prometheus.yml');
  writeFileSync(
    promConfig,
    [
      '# Written by probemesh up. Probe results arrive by remote_write; the services',
      '# own /metrics are scraped.',
      'global:',
      '  scrape_interval: 15s',
      'storage:',
      '  tsdb:',
      '    out_of_order_time_window: 30m',
      'scrape_configs:',
      '  - job_name: probemesh_services',
      '    static_configs:',
      `      - targets: ["127.0.0.1:${ports.coordinatorHttp}", "127.0.0.1:${ports.aggregatorHttp}", ${proberTargets}]`,
      '',
    ].join('\n'),
  );
  children.start('prometheus', o.promBin, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(o.dir, 'prometheus')}`, `--web.listen-address=127.0.0.1:${ports.prometheus}`, '--web.enable-remote-write-receiver', '--storage.tsdb.retention.time=15d'], { dieWithParent: true });
  await waitUntil('nats-server', 20_000, () => tcpOpen(ports.nats), deadChild);

  const natsYaml = `nats:\n  servers: ${yamlList([natsUrl])}\n`;
  const write = (name: string, text: string) => {
    const f = join(o.dir, 'config', `${name}.yml`);
    writeFileSync(f, `# Written by probemesh up.\n${text}`);
    return f;
  };
  const start = (name: string, kind: string, file: string) => children.start(name, process.execPath, [o.cli, kind, '--config', file, '--exit-with-parent']);
  start('coordinator', 'coordinator', write('coordinator', `id: coordinator-1\n${natsYaml}grpc:\n  listen: ${grpcAddr}\nhttp:\n  listen: 127.0.0.1:${ports.coordinatorHttp}\n`));
  start('aggregator', 'aggregator', write('aggregator', `id: aggregator-1\n${natsYaml}http:\n  listen: 127.0.0.1:${ports.aggregatorHttp}\nremote_write:\n  - url: ${promUrl}/api/v1/write\n`));
  ports.probers.forEach((p, i) => {
    const zone = ZONES[i]!;
    start(`prober-${zone}`, 'prober', write(`prober-${zone}`, `id: prober-${zone}\nregion: local\nzone: ${zone}\n${natsYaml}http:\n  listen: 127.0.0.1:${p}\n`));
  });

  await waitUntil('Prometheus', 60_000, () => httpOk(`${promUrl}/-/ready`), deadChild);
  await waitUntil('the coordinator', 30_000, () => withAdmin(grpcAddr, async (c) => (await c.listTargets({}), true)), deadChild);
  await waitUntil('three live probers', 30_000, () => withAdmin(grpcAddr, async (c) => ((await c.listProbers({})).probers ?? []).filter((p) => p.state === 'alive').length >= 3), deadChild);
  await waitUntil('the aggregator', 30_000, () => httpOk(`http://127.0.0.1:${ports.aggregatorHttp}/-/healthy`), deadChild);
}

const HELP = `Usage: probemesh up [--targets FILE] [--dir DIR] [--random-ports] [--no-demo]

Runs the whole mesh on this machine: nats-server (JetStream), Prometheus (remote-write
receiver), one coordinator, three probers (zones a, b, c) and one aggregator, then
loads the targets of FILE (or a built-in demo set) and prints where to look.
Ctrl-C (or SIGTERM) stops every process it started.

Options:
  --targets FILE    YAML file: targets: [{url, module, interval, timeout, replication, labels}]
  --dir DIR         state directory: NATS and Prometheus data, configs, logs (default .probemesh)
  --random-ports    use free random ports instead of the defaults (NATS 4222, Prometheus 9090,
                    gRPC 50051, aggregator 9116, coordinator 9117, probers 9115/9125/9135),
                    drawn below the kernel's ephemeral port range; if one is taken before
                    its process binds it, everything starts again on other ports (3 tries)
  --no-demo         do not start the demo target server (needs --targets for anything to probe)

Examples:
  probemesh up
  probemesh up --targets my-apis.yml --dir /var/tmp/probemesh`;

/** `probemesh up`. */
export const upCommand: Command = {
  name: 'up',
  summary: 'Run the whole mesh locally (NATS, Prometheus, coordinator, 3 probers, aggregator)',
  help: HELP,
  async run(args) {
    const { values } = parse('up', args, { targets: { type: 'string' }, dir: { type: 'string' }, 'random-ports': { type: 'boolean', default: false }, 'no-demo': { type: 'boolean', default: false } }, false);
    const targetsFile = values.targets ? loadConfig(upTargetsSchema, { file: values.targets, env: {} }) : undefined;
    if (values['no-demo'] && !targetsFile) throw new UsageError('up: --no-demo needs --targets FILE, or there is nothing to probe');
    const natsBin = findBinary('nats-server', 'nats-server');
    const promBin = findBinary('prometheus', 'prometheus');
    const dir = resolve(values.dir ?? '.probemesh');
    const logDir = join(dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    mkdirSync(join(dir, 'config'), { recursive: true });

    const random = values['random-ports'];
    if (!random) {
      const named: [string, number][] = [['NATS', DEFAULT_PORTS.nats], ['Prometheus', DEFAULT_PORTS.prometheus], ['coordinator gRPC', DEFAULT_PORTS.grpc], ['coordinator /metrics', DEFAULT_PORTS.coordinatorHttp], ['aggregator /metrics', DEFAULT_PORTS.aggregatorHttp], ...DEFAULT_PORTS.probers.map((p, i): [string, number] => [`prober ${ZONES[i]} /metrics`, p])];
      for (const [what, p] of named) {
        if (await portInUse(p)) throw new UsageError(`up: port ${p} (${what}) is already in use on 127.0.0.1; stop what uses it or run probemesh up --random-ports`);
      }
    }

    const demo = values['no-demo'] ? undefined : await startDemoTargets();
    const cli = join(__dirname, 'main.js');
    let stopping = false;
    let children = new ChildSet(logDir);
    let ports = DEFAULT_PORTS;
    const deadChild = () => {
      if (stopping) return undefined;
      const c = children.list().find((x) => x.proc.exitCode !== null || x.proc.signalCode !== null);
      if (!c) return undefined;
      const last = children.newLog(c).trim().split('\n').at(-1)?.slice(0, 300);
      return `${c.name} exited (${c.proc.signalCode ?? `code ${c.proc.exitCode}`}); see ${c.logFile}${last ? `: ${last}` : ''}`;
    };
    const shutdown = async () => {
      stopping = true;
      await children.stopAll();
      await demo?.close();
    };

    // With --random-ports, a port free when picked can be taken before the child binds
    // it; a child that then exits saying so makes the whole start-up run again with new
    // ports (the state dir is kept).
    const attempts = random ? 3 : 1;
    for (let attempt = 1; ; attempt++) {
      if (random) {
        const p = await pickPorts(8);
        ports = { nats: p[0]!, prometheus: p[1]!, grpc: p[2]!, coordinatorHttp: p[3]!, aggregatorHttp: p[4]!, probers: p.slice(5, 8) };
      }
      try {
        await startChildren(children, ports, { dir, natsBin, promBin, cli }, deadChild);
        break;
      } catch (err) {
        const died = children.list().filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
        stopping = true;
        await children.stopAll();
        stopping = false;
        const clash = died.find((c) => addressInUse(children.newLog(c)));
        if (clash && attempt < attempts) {
          process.stdout.write(`probemesh up: ${clash.name} could not bind its port (taken since it was picked); starting again with other ports\n`);
          children = new ChildSet(logDir);
          continue;
        }
        await demo?.close();
        throw err;
      }
    }
    const natsUrl = `nats://127.0.0.1:${ports.nats}`;
    const grpcAddr = `127.0.0.1:${ports.grpc}`;
    const promUrl = `http://127.0.0.1:${ports.prometheus}`;

    try {
      const toAdd = targetsFile
        ? targetsFile.targets.map((t) => ({ url: t.url, module: t.module, intervalMs: t.interval, timeoutMs: t.timeout ?? 0, replication: t.replication, labels: t.labels }))
        : demo!.targets.map((t) => ({ url: t.url, module: 'http_2xx', intervalMs: 5000, timeoutMs: 2000, replication: 1, labels: { env: 'demo' } }));
      await withAdmin(grpcAddr, async (c) => {
        for (const t of toAdd) await c.addTarget(t);
      });

      const state = {
        dir,
        prometheus: promUrl,
        nats: natsUrl,
        grpc: grpcAddr,
        metrics: {
          coordinator: `http://127.0.0.1:${ports.coordinatorHttp}/metrics`,
          aggregator: `http://127.0.0.1:${ports.aggregatorHttp}/metrics`,
          probers: ports.probers.map((p) => `http://127.0.0.1:${p}/metrics`),
        },
        targets: toAdd.map((t) => t.url),
        pids: Object.fromEntries(children.list().map((c) => [c.name, c.pid])),
        up_pid: process.pid,
      };
      writeFileSync(join(dir, 'up.json'), JSON.stringify(state, null, 2) + '\n');
      const addrFlag = values['random-ports'] ? ` --addr ${grpcAddr}` : '';
      process.stdout.write(
        [
          `probemesh up: local mesh running (state in ${dir})`,
          `  Prometheus    ${promUrl}   (probe results arrive by remote_write)`,
          `  NATS          ${natsUrl}`,
          `  coordinator   gRPC ${grpcAddr}, metrics ${state.metrics.coordinator}`,
          `  probers       ${ports.probers.map((p, i) => `prober-${ZONES[i]} http://127.0.0.1:${p}/metrics`).join(', ')}`,
          `  aggregator    ${state.metrics.aggregator}`,
          `  targets       ${toAdd.length} loaded${demo ? ` (demo server ${demo.baseUrl})` : ''}`,
          '',
          'Try:',
          `  open ${promUrl}/graph?g0.expr=probe_success`,
          `  curl -s '${promUrl}/api/v1/query?query=probe_http_duration_seconds'`,
          `  npx probemesh targets list${addrFlag}`,
          `  npx probemesh probers${addrFlag}`,
          `  npx probemesh targets add https://example.com/ --interval 10s${addrFlag}`,
          '',
          `Logs in ${logDir}. Ctrl-C stops everything.`,
          '',
        ].join('\n'),
      );
    } catch (err) {
      await shutdown();
      throw err;
    }

    return new Promise<number>((resolveExit) => {
      const stop = (why: string, code: number) => {
        if (stopping) return;
        process.stdout.write(`probemesh up: ${why}; stopping ${children.list().length} processes\n`);
        shutdown().then(
          () => {
            process.stdout.write('probemesh up: stopped\n');
            resolveExit(code);
          },
          (err) => {
            process.stderr.write(`probemesh up: stop failed: ${describeError(err)}\n`);
            resolveExit(1);
          },
        );
      };
      process.once('SIGINT', () => stop('SIGINT', 0));
      process.once('SIGTERM', () => stop('SIGTERM', 0));
      for (const c of children.list()) {
        void c.exited.then((how) => {
          if (!stopping) stop(`${c.name} exited unexpectedly (${how}); see ${c.logFile}`, 1);
        });
      }
    });
  },
};
