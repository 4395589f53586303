/**
 * The probe modules this prober knows (blackbox `modules:` entries): module name →
 * a configured probe. Running a module never throws: an unknown module or a probe bug
 * becomes a failed outcome.
 */
import { Logger } from '@probemesh/common';
import { HttpProbeOptions, httpProbeSchema } from './probes/http';
import { failedOutcome, FailureCodes, Probe, PROBE_KINDS, ProbeContext, ProbeDeps, ProbeOutcome, ProbeTarget } from './probes';

/** One module: which protocol, its options and an optional timeout cap. */
export interface ModuleDefinition {
  /** Protocol (blackbox `prober:`). */
  readonly prober: 'http';
  /** Upper bound of the probe timeout in ms; the target's own timeout applies when lower. @default none */
  readonly timeoutMs?: number;
  /** Options of the http protocol (required when `prober` is `http`). */
  readonly http?: HttpProbeOptions;
}

/** Modules every prober has: `http_2xx` (GET, any 2xx is success, timeout from the target). */
export function builtinModules(): Record<string, ModuleDefinition> {
  return {
    http_2xx: { prober: 'http', http: httpProbeSchema.defaultValue!() },
  };
}

interface Configured {
  probe: Probe;
  timeoutMs?: number;
}

/** The configured probe modules of one prober. */
export class ProbeModules {
  private readonly modules = new Map<string, Configured>();

  /** Builds every module's probe once (throws on a bad module definition, e.g. a missing CA file). */
  constructor(definitions: Readonly<Record<string, ModuleDefinition>> = builtinModules(), deps: ProbeDeps = {}) {
    for (const [name, def] of Object.entries(definitions)) {
      const kind = PROBE_KINDS[def.prober];
      const options = def.http ?? kind.schema.defaultValue!();
      this.modules.set(name, { probe: kind.create(options, deps), timeoutMs: def.timeoutMs });
    }
  }

  /** Names of the known modules. */
  names(): string[] {
    return [...this.modules.keys()];
  }

  /** Whether `module` is known. */
  has(module: string): boolean {
    return this.modules.has(module);
  }

  /** The timeout a probe of `module` gets: the target's, capped by the module's. */
  effectiveTimeoutMs(module: string, targetTimeoutMs: number): number {
    const cap = this.modules.get(module)?.timeoutMs;
    return cap !== undefined && cap < targetTimeoutMs ? cap : targetTimeoutMs;
  }

  /** Runs `target.module` on `target`; never throws. */
  async run(target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
    const m = this.modules.get(target.module);
    if (!m) return failedOutcome(FailureCodes.UNKNOWN_MODULE, `unknown module ${JSON.stringify(target.module)} (known: ${this.names().join(', ')})`);
    try {
      return await m.probe.run(target, signal, ctx);
    } catch (err) {
      logProbeBug(ctx.log, target.id, err);
      return failedOutcome(FailureCodes.ERROR, `probe failed unexpectedly: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

function logProbeBug(log: Logger, id: string, err: unknown): void {
  log.error({ err, target: id }, 'probe threw instead of returning a failure (bug)');
}
