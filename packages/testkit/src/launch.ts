/** Starting a server process and waiting until it is ready, with useful failure messages. */
import { ChildProc, Procs, spawnChild } from './procs';

/** A server process did not become ready. `code` is stable. */
export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
  /** Stable code. */
  readonly code = 'PM_TEST_SERVER_START';
  constructor(
    message: string,
    /** Tail of the server's stdout/stderr. */
    readonly output: string,
  ) {
    super(`${message}\n--- last output ---\n${output.trim().split('\n').slice(-25).join('\n') || '(none)'}`);
  }
  /** The server failed because a port was taken (the harness then retries with new ports). */
  get addressInUse(): boolean {
    return /address already in use/i.test(this.output);
  }
}

/** What {@link launch} starts. */
export interface LaunchSpec {
  name: string;
  cmd: string;
  args: readonly string[];
  cwd?: string;
  procs?: Procs;
  /** Resolves true once the server serves; a throw or false means "not yet". */
  ready: () => Promise<boolean>;
  /** @default 20000 */
  timeoutMs?: number;
}

/** Spawns the server and polls `ready` every 50 ms; kills it and throws on exit or timeout. */
export async function launch(spec: LaunchSpec): Promise<ChildProc> {
  const timeoutMs = spec.timeoutMs ?? 20_000;
  const proc = spawnChild(spec.cmd, spec.args, { name: spec.name, cwd: spec.cwd, procs: spec.procs });
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    const info = proc.exitInfo();
    if (info !== undefined) {
      throw new ServerStartError(`${spec.name} exited before it was ready (code ${info.code}, signal ${info.signal}): ${spec.cmd} ${spec.args.join(' ')}`, proc.output());
    }
    try {
      if (await spec.ready()) return proc;
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      await proc.stop(2_000);
      throw new ServerStartError(`${spec.name} not ready after ${timeoutMs}ms (last readiness error: ${lastErr || 'none'})`, proc.output());
    }
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 50))]);
  }
}

/** Runs `attempt` up to 3 times while it fails with "address already in use" (ports are picked racily). */
export async function retryOnAddressInUse<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= 3 || !(err instanceof ServerStartError) || !err.addressInUse) throw err;
    }
  }
}
