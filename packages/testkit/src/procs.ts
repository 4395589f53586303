/**
 * Child processes started by tests: spawn with an output tail for error messages, stop by
 * PID (SIGTERM, then SIGKILL after a grace period), and a {@link Procs} set so a test can
 * assert that nothing it started is left running.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** How a child process ended. */
export interface ExitInfo {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal that killed it, or null. */
  signal: NodeJS.Signals | null;
}

/** Options of {@link spawnChild}. */
export interface SpawnOptions {
  /** Short name used in messages (e.g. `nats-server[n2]`). */
  name: string;
  /** Working directory. @default process.cwd() */
  cwd?: string;
  /** Environment. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Register the child here so a test can check it is gone. */
  procs?: Procs;
  /** Bytes of combined stdout/stderr kept for error messages. @default 16384 */
  tailBytes?: number;
  /**
   * Also copy the child's output to this process's stderr, prefixed with the name.
   * @default true when PROBEMESH_TEST_VERBOSE=1
   */
  echo?: boolean;
}

/** A child process started by the harness. */
export interface ChildProc {
  /** Name given at spawn. */
  readonly name: string;
  /** OS process id. */
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Exit information once exited, else undefined. */
  exitInfo(): ExitInfo | undefined;
  /** Last bytes of combined stdout and stderr. */
  output(): string;
  /** Sends a signal to this process (by PID) if it is still running. @default 'SIGKILL' */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

// The parent-death signal makes the kernel kill servers if the test process itself dies
// (a test-runner timeout or a SIGKILL), so no orphaned nats-server keeps a port or a dir.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * Spawns `cmd args` with stdin ignored and stdout/stderr captured in a tail buffer.
 * Where util-linux `setpriv` exists the child gets SIGKILL when this process dies
 * (setpriv execs the command, so the PID is the command's own).
 */
export function spawnChild(cmd: string, args: readonly string[], opts: SpawnOptions): ChildProc {
  const [file, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', cmd, ...args]] : [cmd, [...args]];
  const child: ChildProcess = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const max = opts.tailBytes ?? 16_384;
  const echo = opts.echo ?? process.env.PROBEMESH_TEST_VERBOSE === '1';
  let tail = '';
  let info: ExitInfo | undefined;
  const onData = (chunk: Buffer): void => {
    const s = chunk.toString('utf8');
    tail = (tail + s).slice(-max);
    if (echo) process.stderr.write(s.replace(/^(?=.)/gm, `[${opts.name}] `));
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('error', (err) => {
      tail += `\n[spawn error] ${err.message}`;
      info ??= { code: 127, signal: null };
      resolve(info);
    });
    child.on('exit', (code, signal) => {
      info = { code, signal };
      resolve(info);
    });
  });
  if (child.pid === undefined) {
    // spawn failed synchronously (ENOENT etc.); 'error' follows on the next tick.
    throw new Error(`cannot start ${opts.name}: ${cmd} could not be executed`);
  }
  const pid = child.pid;
  const proc: ChildProc = {
    name: opts.name,
    pid,
    exited,
    exitInfo: () => info,
    output: () => tail,
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (info !== undefined) return;
      try {
        process.kill(pid, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    },
    async stop(graceMs = 5_000) {
      if (info !== undefined) return info;
      proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceful = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), graceMs)))]);
      clearTimeout(timer);
      if (graceful !== undefined) return graceful;
      proc.kill('SIGKILL');
      return exited;
    },
  };
  opts.procs?.track(proc);
  return proc;
}

/** Whether a process with this PID exists (signal 0; EPERM counts as alive). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The child processes one test started. Pass it as `procs` to the harness's start
 * functions (or use {@link Procs.spawn}), then check {@link Procs.alive} is empty at the end.
 */
export class Procs {
  private readonly children: ChildProc[] = [];

  /** Adds a child started elsewhere. */
  track(child: ChildProc): void {
    this.children.push(child);
  }

  /** Spawns and tracks a child (see {@link spawnChild}). */
  spawn(cmd: string, args: readonly string[], opts: Omit<SpawnOptions, 'procs'>): ChildProc {
    return spawnChild(cmd, args, { ...opts, procs: this });
  }

  /** PIDs of every child ever tracked. */
  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** Tracked children whose PID still exists (checked with signal 0, not just our bookkeeping). */
  alive(): { name: string; pid: number }[] {
    return this.children.filter((c) => pidAlive(c.pid)).map((c) => ({ name: c.name, pid: c.pid }));
  }

  /** Stops every tracked child still running (SIGTERM, SIGKILL after `graceMs`). */
  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop(graceMs)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stopAll();
  }
}
