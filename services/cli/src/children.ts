/**
 * The child processes of `probemesh up`: spawned with their output in a log file,
 * stopped by PID (SIGTERM, then SIGKILL after a grace period), in reverse start order.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, ProbemeshError } from '@probemesh/common';

/** A started child. */
export interface Child {
  /** Name shown to the user (`nats`, `prober-a`, ...). */
  name: string;
  /** Process id. */
  pid: number;
  /** Its log file. */
  logFile: string;
  /** The process handle. */
  proc: ChildProcess;
  /** Resolves with the exit code (or signal) when it exits. */
  exited: Promise<string>;
  /** Size of the log file when this child started (the log is appended to across runs). */
  logStart: number;
}

/** Finds an executable on PATH or in the sbin/bin dirs Debian packages use. */
export function findBinary(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/usr/local/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new ProbemeshError(ErrorCodes.DEPENDENCY_MISSING, `${name} not found: install the Debian package ${debianPackage} (npm start does this when run as root: apt-get install ${debianPackage})`);
}

function findSetpriv(): string | undefined {
  try {
    return findBinary('setpriv', 'util-linux');
  } catch {
    return undefined;
  }
}

/** Starts and stops the children of one `up` run. */
export class ChildSet {
  private readonly children: Child[] = [];

  constructor(private readonly logDir: string) {}

  /** All started children, in start order. */
  list(): readonly Child[] {
    return this.children;
  }

  /**
   * Spawns `cmd args` with stdout/stderr appended to `<logDir>/<name>.log`, in its own
   * process group so a terminal's Ctrl-C reaches only `up`, which then stops the
   * children in order. `dieWithParent` wraps the command in `setpriv --pdeathsig`
   * (util-linux) so it cannot outlive `up` even if `up` is killed with SIGKILL.
   */
  start(name: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; dieWithParent?: boolean } = {}): Child {
    const logFile = join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const logStart = fstatSync(fd).size;
    const setpriv = opts.dieWithParent ? findSetpriv() : undefined;
    const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGTERM', '--', cmd, ...args]] : [cmd, args];
    const proc = spawn(file, argv, { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, detached: true });
    closeSync(fd);
    if (proc.pid === undefined) throw new ProbemeshError(ErrorCodes.DEPENDENCY_MISSING, `cannot start ${name} (${cmd})`);
    const exited = new Promise<string>((resolve) => {
      proc.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
      proc.once('error', (err) => resolve(`error ${err.message}`));
    });
    const child: Child = { name, pid: proc.pid, logFile, proc, exited, logStart };
    this.children.push(child);
    return child;
  }

  /** What `c` wrote to its log since it was started ('' if unreadable). */
  newLog(c: Child): string {
    try {
      return readFileSync(c.logFile).subarray(c.logStart).toString('utf8');
    } catch {
      return '';
    }
  }

  /** Stops every child, last started first; SIGKILL after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    for (const c of [...this.children].reverse()) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
      c.proc.kill('SIGTERM');
      const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
      await c.exited;
      clearTimeout(t);
    }
  }
}
