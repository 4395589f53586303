/**
 * Keeps the clock's sync state current: asks linuxptp (`pmc`), chrony (`chronyc`) and
 * the kernel (`adjtimex`) every poll interval and keeps the best answer — a synced PTP
 * source over a synced NTP one over the kernel's own word; nothing → source `none`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '@probemesh/common';
import { findExecutable } from '../ebpf/runner';
import { ensureAdjtimexHelper, readAdjtimex } from './adjtimex';
import { ClockSyncStatus, parseChronyTracking, parsePmcTimeStatus, statusFromAdjtimex, unsyncedStatus } from './sync';

const execFileP = promisify(execFile);

/** Runs a command and returns its stdout (injectable for tests). */
export type CommandRunner = (cmd: string, args: readonly string[]) => Promise<string>;

/** The real one: 3 s timeout. */
export const runCommand: CommandRunner = async (cmd, args) => (await execFileP(cmd, [...args], { timeout: 3_000 })).stdout;

/** Options of a {@link ClockSyncMonitor}. */
export interface ClockSyncMonitorOptions {
  /** linuxptp `pmc` (path or name); false = do not ask. @default "pmc" */
  pmcPath?: string | false;
  /** `chronyc` (path or name); false = do not ask. @default "chronyc" */
  chronycPath?: string | false;
  /** Read adjtimex through the compiled helper. @default true */
  adjtimex?: boolean;
  /** Time between two polls, ms. @default 10000 */
  pollIntervalMs?: number;
  /** Logger (source changes are logged once each). */
  log: Logger;
  /** Command runner. @default runCommand */
  run?: CommandRunner;
  /** Reads adjtimex (injectable). @default the compiled helper */
  readKernel?: () => Promise<ClockSyncStatus>;
}

/** See the module comment. */
export class ClockSyncMonitor {
  private current: ClockSyncStatus = unsyncedStatus('not polled yet');
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private helper: Promise<string> | undefined;
  private readonly run: CommandRunner;

  constructor(private readonly opts: ClockSyncMonitorOptions) {
    this.run = opts.run ?? runCommand;
  }

  /** The latest state. */
  status(): ClockSyncStatus {
    return this.current;
  }

  /** Polls once now, then every interval (the timer does not keep the process alive). */
  async start(): Promise<ClockSyncStatus> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.opts.pollIntervalMs ?? 10_000);
    this.timer.unref();
    return this.current;
  }

  /** Stops polling (waits for a poll in progress). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /** One poll of every source; keeps the best. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const found: ClockSyncStatus[] = [];
    const why: string[] = [];
    const pmc = this.tool(this.opts.pmcPath, 'pmc');
    if (pmc) {
      const st = await this.run(pmc, ['-u', '-b', '0', 'GET TIME_STATUS_NP']).then(parsePmcTimeStatus, (e: Error) => void why.push(`pmc: ${firstLine(e.message)}`));
      if (st) found.push(st);
      else if (!why.length) why.push('pmc: no ptp4l answer');
    } else why.push('pmc not installed');
    const chronyc = this.tool(this.opts.chronycPath, 'chronyc');
    if (chronyc) {
      const st = await this.run(chronyc, ['-c', 'tracking']).then(parseChronyTracking, (e: Error) => void why.push(`chronyc: ${firstLine(e.message)}`));
      if (st) found.push(st);
    } else why.push('chronyc not installed');
    if (this.opts.adjtimex !== false) {
      const st = await this.readKernel().catch((e: Error) => void why.push(`adjtimex: ${firstLine(e.message)}`));
      if (st) found.push(st);
    }
    const rank = (s: ClockSyncStatus): number => (s.synced ? 10 : 0) + (s.source === 'ptp' ? 3 : s.source === 'ntp' ? 2 : 1) + (s.detail.startsWith('adjtimex') ? -1 : 0);
    found.sort((a, b) => rank(b) - rank(a));
    const best = found[0] ?? unsyncedStatus(`no clock sync source (${why.join('; ')})`);
    const next = best.synced || found.length === 0 ? best : { ...best, detail: `${best.detail}; ${why.join('; ')}` };
    if (next.source !== this.current.source || next.synced !== this.current.synced) {
      this.opts.log[next.synced ? 'info' : 'warn']({ source: next.source, synced: next.synced, error_bound_ns: String(next.errorBoundNs), detail: next.detail }, 'clock sync state');
    }
    this.current = next;
  }

  private tool(opt: string | false | undefined, name: string): string | undefined {
    if (opt === false) return undefined;
    return findExecutable(opt ?? name);
  }

  private readKernel(): Promise<ClockSyncStatus> {
    if (this.opts.readKernel) return this.opts.readKernel();
    this.helper ??= ensureAdjtimexHelper();
    return this.helper.then(readAdjtimex).then(statusFromAdjtimex);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 200);
}
