/**
 * A delayed network path for accuracy tests: two network namespaces (`pm4-<rand>-a`,
 * `-b`) joined by a veth pair; in `-b` a server and iptables NFQUEUE rules hand the
 * server's replies (and ICMP echo replies) to `delayer.c`, which holds them a fixed
 * one-way delay (and, when loss is asked for, the packets to the server too, of which it
 * drops chosen ones). The delayer runs SCHED_FIFO, so the delay does not stretch with
 * the machine's load. Processes run inside with
 * `nsenter --net=/run/netns/NAME` (not `ip netns exec`: it remounts /sys, which breaks
 * bpftrace). Everything created is removed by `close()`.
 */
import { ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DriverArgs, Sample } from './driver';

const HERE = __dirname.replace(/[/\\]dist[/\\]netem$/, '/netem');

/** Why the netem tests cannot run here ('' if they can). */
export function netemUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, iptables, bpftrace); CI runs as root';
  for (const bin of ['ip', 'iptables', 'nsenter', 'gcc', 'bpftrace']) {
    if (spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`]).status !== 0) return `${bin} not installed (scripts/setup.sh installs it)`;
  }
  if (!existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h')) return 'libnetfilter-queue-dev not installed (scripts/setup.sh installs it)';
  if (!existsSync(join(HERE, 'delayer.c'))) return `delayer.c not found in ${HERE}`;
  return '';
}

/** Compiles delayer.c and conntimer.c into a fresh temp dir. */
export function buildTools(): { dir: string; delayer: string; conntimer: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pm4-netem-'));
  const delayer = join(dir, 'delayer');
  const conntimer = join(dir, 'conntimer');
  execFileSync('gcc', ['-O2', '-Wall', '-o', delayer, join(HERE, 'delayer.c'), '-lnetfilter_queue', '-lnfnetlink']);
  execFileSync('gcc', ['-O2', '-Wall', '-o', conntimer, join(HERE, 'conntimer.c')]);
  return { dir, delayer, conntimer };
}

/** Loss injected by the delayer. */
export interface Loss {
  /** Drop the first SYN of each client connection. */
  firstSyn?: boolean;
  /** Drop the first data segment of each client connection. */
  firstData?: boolean;
}

/** The path; see the module comment. */
export class DelayedPath {
  readonly name = `pm4-${randomBytes(3).toString('hex')}`;
  readonly nsA = `${this.name}-a`;
  readonly nsB = `${this.name}-b`;
  readonly addrA = '10.77.0.1';
  readonly addrB = '10.77.0.2';
  readonly port = 8080;
  readonly queue = 4 + (randomBytes(1)[0]! % 200);
  private readonly procs = new Set<ChildProcess>();
  private delayer: ChildProcess | undefined;
  private created = false;
  private inputQueued = false;

  constructor(readonly tools: { dir: string; delayer: string; conntimer: string }) {}

  /** `nsenter --net=… cmd` argv for a process inside namespace `ns`. */
  inNs(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
    return ['nsenter', [`--net=/run/netns/${ns}`, cmd, ...args]];
  }

  /** Creates namespaces, veth, rules and the server (in -b). */
  async open(): Promise<void> {
    const vA = `${this.name.replace(/-/g, '')}a`;
    const vB = `${this.name.replace(/-/g, '')}b`;
    this.created = true;
    const ip = (...a: string[]): void => void execFileSync('ip', a);
    ip('netns', 'add', this.nsA);
    ip('netns', 'add', this.nsB);
    ip('link', 'add', vA, 'type', 'veth', 'peer', 'name', vB);
    ip('link', 'set', vA, 'netns', this.nsA);
    ip('link', 'set', vB, 'netns', this.nsB);
    ip('-n', this.nsA, 'addr', 'add', `${this.addrA}/24`, 'dev', vA);
    ip('-n', this.nsB, 'addr', 'add', `${this.addrB}/24`, 'dev', vB);
    for (const [ns, dev] of [[this.nsA, vA], [this.nsB, vB]] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    this.ipt('-A', 'OUTPUT', '-p', 'tcp', '--sport', String(this.port), ...this.toQueue());
    this.ipt('-A', 'OUTPUT', '-p', 'icmp', '--icmp-type', 'echo-reply', ...this.toQueue());
    const server = `require('http').createServer((q,s)=>s.end('ok\\n')).listen(${this.port},'${this.addrB}',()=>console.log('ready'))`;
    await this.startReady(this.nsB, process.execPath, ['-e', server]);
  }

  /**
   * (Re)starts the delayer with a one-way delay on the server's replies and optional loss.
   * Packets to the server go through the queue only when loss is asked for: queued, each
   * handshake had one more user-space hop (the SYN waited for the delayer to wake before
   * a SYN-ACK existed, the final ACK queued behind it too), whose time varies with load
   * and is not the injected delay (with 2 busy loops running, the accuracy test's
   * |kernel − truth| medians reached 31 µs with it, 10 µs without).
   */
  async setDelay(delayUs: number, loss: Loss = {}): Promise<void> {
    await this.stopProc(this.delayer);
    const queueInput = Boolean(loss.firstSyn || loss.firstData);
    if (queueInput !== this.inputQueued) {
      this.ipt(queueInput ? '-A' : '-D', 'INPUT', '-p', 'tcp', '--dport', String(this.port), ...this.toQueue());
      this.inputQueued = queueInput;
    }
    const args = ['--queue', String(this.queue), '--port', String(this.port), '--delay-us', String(delayUs)];
    if (loss.firstSyn) args.push('--drop-first-syn');
    if (loss.firstData) args.push('--drop-first-data');
    this.delayer = await this.startReady(this.nsB, this.tools.delayer, args);
  }

  /** Truth: `n` blocking connect() timings (ns) from namespace -a. */
  connectTruth(n: number, gapMs = 5): number[] {
    const [cmd, args] = this.inNs(this.nsA, this.tools.conntimer, [this.addrB, String(this.port), String(n), String(gapMs)]);
    const out = execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
    return out.split('\n').filter(Boolean).map(Number).filter((v) => v > 0);
  }

  /**
   * Truth for ICMP: `n` fping RTTs (ms; fping prints 3 significant digits, so 10 µs
   * resolution below 10 ms, 100 µs above) from -a; [] without fping. `-t` is explicit:
   * fping 5 lowers its default timeout to the period (`-p 20`), so at 20 ms one-way
   * every reply came too late and was printed as "-".
   */
  pingTruth(n: number): number[] {
    const [cmd, args] = this.inNs(this.nsA, 'fping', ['-C', String(n), '-q', '-p', '20', '-t', '1000', this.addrB]);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
    const m = /:\s+(.*)$/m.exec(r.stderr ?? '');
    return m ? m[1]!.trim().split(/\s+/).map(Number).filter((v) => Number.isFinite(v)) : [];
  }

  /** Starts a process in `ns` and waits for "ready" on its stdout. */
  startReady(ns: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<ChildProcess> {
    const [c, a] = this.inNs(ns, cmd, args);
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.add(child);
    child.once('close', () => this.procs.delete(child));
    return new Promise((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`${cmd} not ready after ${timeoutMs}ms: ${err}`)), timeoutMs);
      child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`${cmd} exited (${code}) before ready: ${err}`));
      });
    });
  }

  /** Stops our processes and deletes our namespaces (the veth pair goes with them). */
  async close(): Promise<void> {
    for (const p of [...this.procs]) await this.stopProc(p);
    if (this.created) {
      for (const ns of [this.nsA, this.nsB]) spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(this.tools.dir, { recursive: true, force: true });
  }

  private ipt(...a: string[]): void {
    execFileSync('ip', ['netns', 'exec', this.nsB, 'iptables', ...a]);
  }

  private toQueue(): string[] {
    return ['-j', 'NFQUEUE', '--queue-num', String(this.queue), '--queue-bypass'];
  }

  private async stopProc(p: ChildProcess | undefined): Promise<void> {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const closed = new Promise((r) => p.once('close', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3_000);
    await closed;
    clearTimeout(t);
  }
}

/** Median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Linear-interpolated quantile. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Runs driver.js inside namespace -a of `path` and returns its samples. */
export async function drive(path: DelayedPath, args: Omit<DriverArgs, 'addr' | 'port'>): Promise<{ samples: Sample[]; done: { ebpf: { up: boolean; reason: string } } }> {
  const [cmd, argv] = path.inNs(path.nsA, process.execPath, [join(__dirname, 'driver.js'), JSON.stringify({ addr: path.addrB, port: path.port, ...args })]);
  const { stdout } = await promisify(execFile)(cmd, argv, { maxBuffer: 64 << 20, timeout: 300_000 });
  const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Sample & { done?: boolean });
  const done = lines.find((l) => l.done) as unknown as { ebpf: { up: boolean; reason: string } };
  return { samples: lines.filter((l) => !l.done), done };
}
