/**
 * Runs bpftrace once for the prober's life: checks what it needs (root, bpftrace, BTF,
 * tracefs), starts `bpf/probemesh-tcp.bt` filtered to this process, awaits the
 * "probes attached" token, then streams its lines into a {@link KernelJoiner}.
 * Anything missing or failing leaves it down with a reason; probing never depends on it.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { Logger } from '@probemesh/common';
import { parseKernelLine } from './events';
import { KernelJoiner, KernelJoinerOptions } from './joiner';
import type { KernelTcp, SocketInfo } from './kernel-tcp';

/** Whether kernel measurements are taken, and why not (proto `EbpfStatus`). */
export interface EbpfStatus {
  readonly up: boolean;
  /** '' when up; else a short reason, e.g. "not root", "bpftrace not found". */
  readonly reason: string;
}

/** Options of an {@link EbpfRunner}. */
export interface EbpfRunnerOptions {
  /** Start bpftrace at all. @default true */
  enabled?: boolean;
  /** bpftrace executable (a path, or a name looked up in PATH). @default "bpftrace" */
  bpftracePath?: string;
  /** The bpftrace program. @default bpf/probemesh-tcp.bt of the probemesh checkout */
  programPath?: string;
  /** Longest wait for the probes to attach, ms. @default 30000 */
  attachTimeoutMs?: number;
  /** Pid whose connections are traced. @default process.pid */
  pid?: number;
  /** Mount tracefs at /sys/kernel/tracing when it is not mounted (root only). @default true */
  mountTracefs?: boolean;
  /** Logger. */
  log: Logger;
  /** Called on every status change. */
  onStatus?(status: EbpfStatus): void;
  /** Joiner bounds. */
  joiner?: KernelJoinerOptions;
  /**
   * Entries of each BPF map (BPFTRACE_MAP_KEYS_MAX): bounds the prober's TCP connections
   * open at once that are traced (beyond it a probe gets no kernel data) and the sockets
   * finished within one 20 ms batch. Every batch iterates the map's hash buckets twice
   * (print, clear), so it is kept near what is needed. @default 8192
   */
  mapKeysMax?: number;
}

/** Counters of the event stream (exported as metrics). */
export interface EbpfCounts {
  events: number;
  lost: number;
}

/** The program shipped in the repository: <root>/bpf/probemesh-tcp.bt (this file is services/prober/{src,dist}/ebpf/). */
export const DEFAULT_PROGRAM = resolve(__dirname, '..', '..', '..', '..', 'bpf', 'probemesh-tcp.bt');
const BTF = '/sys/kernel/btf/vmlinux';
const TRACEFS = '/sys/kernel/tracing';
const READY_TOKEN = '__BPFTRACE_NOTIFY_PROBES_ATTACHED';
/** A probe still waiting this long past its deadline means bpftrace's ticks stopped: it is answered without kernel data. */
const STALE_NS = 2_000_000_000n;

/** See the module comment. */
export class EbpfRunner {
  readonly joiner: KernelJoiner;
  readonly counts: EbpfCounts = { events: 0, lost: 0 };
  private current: EbpfStatus = { up: false, reason: 'not started' };
  private child: ChildProcess | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();
  private staleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: EbpfRunnerOptions) {
    this.joiner = new KernelJoiner(opts.joiner);
  }

  /** Current status. */
  status(): EbpfStatus {
    return this.current;
  }

  /** Starts bpftrace and resolves once it is attached (or why it is not). Never throws. */
  async start(): Promise<EbpfStatus> {
    const why = this.precondition();
    if (why) return this.down(why);
    const bpftrace = findExecutable(this.opts.bpftracePath ?? 'bpftrace')!;
    const program = this.opts.programPath ?? DEFAULT_PROGRAM;
    const pid = this.opts.pid ?? process.pid;
    const child = spawn(bpftrace, ['-p', String(pid), program, String(pid)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, [READY_TOKEN]: '1', BPFTRACE_MAP_KEYS_MAX: String(this.opts.mapKeysMax ?? 8192) },
    });
    this.child = child;
    this.exited = new Promise((res) => child.once('close', () => res()));
    let stderrTail = '';
    const ready = new Promise<EbpfStatus>((res) => {
      const timer = setTimeout(() => res({ up: false, reason: `bpftrace did not attach within ${this.attachTimeoutMs()}ms` }), this.attachTimeoutMs());
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        stderrTail = (stderrTail + chunk).slice(-2000);
        if (stderrTail.includes(READY_TOKEN)) {
          clearTimeout(timer);
          res({ up: true, reason: '' });
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        res({ up: false, reason: `bpftrace failed to start: ${err.message}` });
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        res({ up: false, reason: `attach failed: bpftrace exited (${signal ?? code}): ${lastError(stderrTail)}` });
      });
    });
    // Lines are split here rather than by readline (whose per-chunk machinery is made for
    // terminals). The program prints finished sockets in batches every 20 ms, so this runs
    // about 50 times a second with ~20 lines each at a steady 1,000 probes/s.
    let rest = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const text = rest + chunk;
      let from = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
        this.onLine(text.slice(from, nl));
        from = nl + 1;
      }
      rest = text.slice(from);
    });
    const st = await ready;
    if (!st.up) {
      await this.kill();
      return this.down(st.reason);
    }
    child.once('close', (code, signal) => {
      clearInterval(this.staleTimer);
      if (this.stopping) return;
      this.joiner.release();
      this.down(`bpftrace exited (${signal ?? code}): ${lastError(stderrTail)}`);
    });
    this.current = st;
    let warned = false;
    this.staleTimer = setInterval(() => {
      const n = this.joiner.expire(process.hrtime.bigint() - STALE_NS);
      if (n > 0 && !warned) {
        warned = true;
        this.opts.log.warn({ probes: n }, 'no tick from bpftrace for over 2 s: probes answered without kernel data');
      }
    }, 1_000).unref();
    this.opts.log.info({ pid, program }, 'eBPF kernel TCP measurements up');
    this.opts.onStatus?.(st);
    return st;
  }

  /** The kernel's figures for a probe's socket (undefined when down or not seen). */
  join(info: SocketInfo): Promise<KernelTcp | undefined> {
    if (!this.current.up) return Promise.resolve(undefined);
    return this.joiner.join(info);
  }

  /** Stops bpftrace: SIGINT, again (it may miss one under load), then SIGKILL. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.staleTimer);
    this.joiner.release();
    await this.kill();
    if (this.current.up) this.current = { up: false, reason: 'stopped' };
  }

  private attachTimeoutMs(): number {
    return this.opts.attachTimeoutMs ?? 30_000;
  }

  private onLine(line: string): void {
    const ev = parseKernelLine(line);
    if (!ev) return;
    if (ev.e === 'tcp') {
      this.counts.events++;
      this.joiner.addEvent(ev);
    } else if (ev.e === 'tick') this.joiner.tick(ev.t);
    else if (ev.e === 'lost') this.counts.lost += ev.count;
  }

  private async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.exited;
    const waitExit = (ms: number): Promise<boolean> =>
      Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    for (const sig of ['SIGINT', 'SIGINT', 'SIGKILL'] as const) {
      try {
        child.kill(sig);
      } catch {
        return;
      }
      if (await waitExit(sig === 'SIGKILL' ? 5_000 : 1_500)) return;
    }
  }

  private down(reason: string): EbpfStatus {
    const st = { up: false, reason };
    const changed = this.current.reason !== reason;
    this.current = st;
    if (changed) {
      this.opts.log.warn({ reason }, 'eBPF kernel TCP measurements unavailable; probing goes on without them');
      this.opts.onStatus?.(st);
    }
    return st;
  }

  /** Why bpftrace cannot run here, or '' if it may. */
  private precondition(): string {
    if (this.opts.enabled === false) return 'disabled in config (ebpf.enabled: false)';
    if (process.platform !== 'linux') return `not Linux (${process.platform})`;
    if (process.getuid?.() !== 0) return 'not root (bpftrace needs root or CAP_BPF+CAP_PERFMON)';
    const name = this.opts.bpftracePath ?? 'bpftrace';
    if (!findExecutable(name)) return `bpftrace not found (${name})`;
    if (!existsSync(BTF)) return `no BTF (${BTF} missing)`;
    const program = this.opts.programPath ?? DEFAULT_PROGRAM;
    if (!existsSync(program)) return `program not found (${program})`;
    if (!existsSync(join(TRACEFS, 'events'))) {
      if (this.opts.mountTracefs === false) return `tracefs not mounted at ${TRACEFS}`;
      const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { encoding: 'utf8', timeout: 5_000 });
      if (r.status !== 0 || !existsSync(join(TRACEFS, 'events'))) return `tracefs not mounted at ${TRACEFS} and mounting failed: ${(r.stderr || r.error?.message || '').trim()}`;
      this.opts.log.info({ path: TRACEFS }, 'mounted tracefs for bpftrace tracepoints');
    }
    return '';
  }
}

/** The executable `name` resolves to (a path as is, else through PATH), or undefined. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).concat(['/usr/sbin', '/sbin']).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The last meaningful stderr line of bpftrace (skipping the harmless RLIMIT_MEMLOCK notice). */
function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.includes('RLIMIT_MEMLOCK') && !l.includes(READY_TOKEN));
  const errors = lines.filter((l) => /error/i.test(l));
  return errors[errors.length - 1] ?? lines[lines.length - 1] ?? 'no output';
}

