/**
 * ICMP echo through Debian's `fping`, batched.
 *
 * Why fping: Node has no raw sockets, and unprivileged ICMP datagram sockets are off on
 * these hosts (`net.ipv4.ping_group_range = 1 0`); /usr/bin/fping carries cap_net_raw,
 * so it pings as any user, both IPv4 and IPv6, with DF (-M), payload size (-b) and TTL
 * (-H) — everything the icmp module needs — and reports ICMP errors (unreachable,
 * fragmentation needed, time exceeded) on stderr.
 *
 * Why batches: fping reads its target list only at start, so one long-running child
 * cannot be fed new targets. Instead, probes that arrive within `windowMs` of each other
 * with the same fping flags share ONE `fping -C <count> -p <period> -t <timeout> ...
 * host1 host2 ...` run; fping pings the hosts interleaved and prints a per-host summary
 * (`host : 0.08 - 0.05`, `-` = lost). Cost per probe: the probe's own packets plus
 * 1/batch-size of a fork+exec of a small C program (~1–2 ms CPU); with the scheduler's
 * spreading, a tick's ICMP targets land in one batch.
 */
import { spawn } from 'node:child_process';

/** The fping flags of one batch (probes share a run only when all are equal). */
export interface FpingFlags {
  /** 4 or 6 (`-4` / `-6`). */
  readonly family: 4 | 6;
  /** Echo requests per host (`-C`). */
  readonly count: number;
  /** Interval between a host's requests in ms (`-p`). */
  readonly periodMs: number;
  /** Per-request reply timeout in ms (`-t`). */
  readonly timeoutMs: number;
  /** ICMP payload bytes (`-b`). */
  readonly payloadSize?: number;
  /** Don't-fragment (`-M`, IPv4). */
  readonly dontFragment?: boolean;
  /** IP TTL / hop limit (`-H`). */
  readonly ttl?: number;
  /** Source address (`-S`). */
  readonly sourceIp?: string;
}

/** One host's outcome from a run. */
export interface FpingHostResult {
  /** RTT in ms per request, null = no reply. Empty when fping gave no summary line. */
  readonly rttsMs: readonly (number | null)[];
  /** ICMP error descriptions received for this host (e.g. "Host Unreachable", "Unreachable (Fragmentation Needed)", "Time Exceeded"). */
  readonly icmpErrors: readonly string[];
  /** Set when fping itself failed (missing binary, bad arguments); the text says why. */
  readonly error?: string;
}

/** Runs fping; injectable (tests run it inside a network namespace via nsenter). */
export type FpingCommand = readonly string[];

/** The default command. */
export const DEFAULT_FPING: FpingCommand = ['/usr/bin/fping'];

/** fping arguments for `flags` and `hosts`. */
export function fpingArgs(flags: FpingFlags, hosts: readonly string[]): string[] {
  // `-i 1`: 1 ms between any two packets of the run (fping's default is 10 ms, so a batch
  // of 32 hosts took 0.32 s to send and a prober topped out near 100 ICMP probes/s; 1 ms
  // is the smallest fping 5.1 allows without root). A host's own packets stay `-p` apart.
  const a = [`-${flags.family}`, '-i', '1', '-C', String(flags.count), '-p', String(flags.periodMs), '-t', String(flags.timeoutMs), '-r', '0'];
  if (flags.payloadSize !== undefined) a.push('-b', String(flags.payloadSize));
  if (flags.dontFragment) a.push('-M');
  if (flags.ttl !== undefined) a.push('-H', String(flags.ttl));
  if (flags.sourceIp !== undefined) a.push('-S', flags.sourceIp);
  return [...a, ...hosts];
}

const SUMMARY = /^(\S+)\s+:((?:\s+(?:-|\d+(?:\.\d+)?))+)\s*$/;
const ICMP_ERROR = /^ICMP(?:v6)? (.+?) from \S+ for ICMP(?:v6)? Echo sent to (\S+)/;

/** Parses fping's stderr (ICMP errors and the -C summary) into per-host results. */
export function parseFpingStderr(stderr: string, hosts: readonly string[]): Map<string, FpingHostResult> {
  const rtts = new Map<string, (number | null)[]>();
  const errors = new Map<string, string[]>();
  for (const line of stderr.split('\n')) {
    const e = ICMP_ERROR.exec(line);
    if (e) {
      const list = errors.get(e[2]!) ?? [];
      list.push(e[1]!);
      errors.set(e[2]!, list);
      continue;
    }
    const s = SUMMARY.exec(line);
    if (s) rtts.set(s[1]!, s[2]!.trim().split(/\s+/).map((x) => (x === '-' ? null : Number(x))));
  }
  return new Map(hosts.map((h) => [h, { rttsMs: rtts.get(h) ?? [], icmpErrors: errors.get(h) ?? [] }]));
}

interface Waiter {
  host: string;
  resolve(r: FpingHostResult): void;
  /** Resolves when the child has been spawned (end of the probe's setup phase). */
  onSpawn(): void;
}

interface Batch {
  flags: FpingFlags;
  waiters: Waiter[];
}

/** Batches concurrent ICMP probes into shared fping runs (see the file comment). */
export class FpingPool {
  private readonly pending = new Map<string, Batch>();
  private runs = 0;
  private hosts = 0;

  /** fping processes started so far and hosts pinged by them (batching efficiency). */
  get stats(): { runs: number; hosts: number } {
    return { runs: this.runs, hosts: this.hosts };
  }

  /**
   * @param command the fping command (argv prefix).
   * @param windowMs how long the first probe of a batch waits for others.
   */
  constructor(private readonly command: FpingCommand = DEFAULT_FPING, private readonly windowMs = 5) {}

  /** Pings `host` (an IP literal) with `flags`; `onSpawn` is called when its fping run starts. */
  ping(host: string, flags: FpingFlags, onSpawn: () => void): Promise<FpingHostResult> {
    const key = JSON.stringify(flags);
    let batch = this.pending.get(key);
    if (!batch) {
      const b: Batch = { flags, waiters: [] };
      batch = b;
      this.pending.set(key, b);
      setTimeout(() => {
        this.pending.delete(key);
        this.run(b);
      }, this.windowMs);
    }
    return new Promise<FpingHostResult>((resolve) => batch!.waiters.push({ host, resolve, onSpawn }));
  }

  private run(batch: Batch): void {
    const hosts = [...new Set(batch.waiters.map((w) => w.host))];
    this.runs++;
    this.hosts += hosts.length;
    const [cmd, ...prefix] = this.command;
    const finish = (results: Map<string, FpingHostResult> | string): void => {
      for (const w of batch.waiters) w.resolve(typeof results === 'string' ? { rttsMs: [], icmpErrors: [], error: results } : results.get(w.host) ?? { rttsMs: [], icmpErrors: [] });
    };
    const child = spawn(cmd!, [...prefix, ...fpingArgs(batch.flags, hosts)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('spawn', () => batch.waiters.forEach((w) => w.onSpawn()));
    child.once('error', (err) => finish(`cannot run ${cmd}: ${err.message} (install the Debian package fping)`));
    child.once('close', (code) => {
      // 0 = all alive, 1 = some unreachable, 2 = a host name not found; >= 3 = fping failed.
      if (code === null || code >= 3) finish(`fping exited with ${code ?? 'a signal'}: ${stderr.trim().split('\n').slice(-2).join(' / ')}`);
      else finish(parseFpingStderr(stderr, hosts));
    });
  }
}
