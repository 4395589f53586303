/**
 * The probe modules this prober knows: blackbox_exporter's `modules:` YAML as is
 * (`{prober, timeout, http|tcp|dns|icmp|grpc|thrift: {...}}`), each protocol block checked
 * by its protocol's schema from PROBE_KINDS (so a new protocol plugs in by itself), unknown
 * keys rejected with their path. Running a module never throws: an unknown module or a
 * probe bug becomes a failed outcome.
 */
import { addIssue, duration, loadConfig, Logger, obj, optional, ParseContext, record, Schema } from '@probemesh/common';
import { failedOutcome, FailureCodes, Probe, PROBE_KINDS, ProbeContext, ProbeDeps, ProbeKind, ProbeOutcome, ProbeTarget } from './probes';

/** Protocol block names blackbox knows: accepted (and ignored) even when that protocol is not in PROBE_KINDS. */
const BLACKBOX_PROTOCOLS = ['http', 'tcp', 'dns', 'icmp', 'grpc', 'thrift'];

/** One module: which protocol, its options and an optional timeout cap. */
export interface ModuleDefinition {
  /** Protocol (blackbox `prober:`), a key of PROBE_KINDS. */
  readonly prober: string;
  /** Upper bound of the probe timeout in ms (blackbox `timeout`). @default none */
  readonly timeoutMs?: number;
  /** The protocol's options under its name (`http`, `tcp`, ...); absent = that schema's defaults. */
  readonly [protocol: string]: unknown;
}

function kinds(): Record<string, ProbeKind<unknown>> {
  return PROBE_KINDS as unknown as Record<string, ProbeKind<unknown>>;
}

const timeoutSchema = optional(duration({ minMs: 1, doc: 'Upper bound of the probe timeout. @default none (the target timeout)' }));

/**
 * Schema of one blackbox module. The protocol block is parsed by `PROBE_KINDS[prober].schema`
 * at `<path>.<prober>`; blocks of other known protocols are checked too and ignored
 * (blackbox ignores them).
 */
export const moduleSchema: Schema<ModuleDefinition> = {
  expected: 'a probe module ({prober, timeout, <protocol>: {...}})',
  doc: 'A blackbox_exporter module: `prober` (http, tcp, dns, icmp, grpc, thrift as available), `timeout`, and the protocol block.',
  parse(v: unknown, path: string, ctx: ParseContext): ModuleDefinition | undefined {
    const at = (k: string): string => (path ? `${path}.${k}` : k);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      addIssue(ctx, path, 'expected a mapping with `prober:`');
      return undefined;
    }
    const raw = v as Record<string, unknown>;
    const available = kinds();
    const allowed = new Set(['prober', 'timeout', ...BLACKBOX_PROTOCOLS, ...Object.keys(available)]);
    const before = ctx.issues.length;
    for (const k of Object.keys(raw)) if (!allowed.has(k)) addIssue(ctx, at(k), `unknown key (allowed here: ${[...allowed].join(', ')})`);
    const prober = raw.prober;
    if (typeof prober !== 'string' || prober === '') addIssue(ctx, at('prober'), `required: one of ${Object.keys(available).join(', ')}`);
    else if (!available[prober]) addIssue(ctx, at('prober'), `unknown prober ${JSON.stringify(prober)} (available: ${Object.keys(available).join(', ')})`);
    const timeoutMs = raw.timeout === undefined || raw.timeout === null ? undefined : timeoutSchema.parse(raw.timeout, at('timeout'), ctx);
    const out: Record<string, unknown> = { prober, timeoutMs };
    for (const name of Object.keys(available)) {
      const block = raw[name];
      if (name !== prober && (block === undefined || block === null)) continue;
      const parsed = available[name]!.schema.parse(block ?? {}, at(name), ctx);
      if (name === prober) out[name] = parsed;
    }
    return ctx.issues.length === before ? (out as ModuleDefinition) : undefined;
  },
};

/** `modules:` — module name → module. */
export const modulesSchema = record(moduleSchema, { doc: 'Probe modules (blackbox_exporter `modules:` format).' });

/** A blackbox.yml file: `modules:` at the top. */
export const blackboxFileSchema = obj({ modules: modulesSchema });

/**
 * blackbox's example modules, as raw YAML values; {@link builtinModules} keeps those whose
 * protocol is in PROBE_KINDS and whose block parses.
 */
const BUILTIN: Readonly<Record<string, object>> = {
  http_2xx: { prober: 'http' },
  http_post_2xx: { prober: 'http', http: { method: 'POST' } },
  tcp_connect: { prober: 'tcp' },
  icmp: { prober: 'icmp' },
  grpc: { prober: 'grpc', grpc: { tls: true, preferred_ip_protocol: 'ip4' } },
  grpc_plain: { prober: 'grpc', grpc: { tls: false } },
};

/** The built-in modules (http_2xx, http_post_2xx, tcp_connect, icmp, grpc, grpc_plain) whose protocol exists now. */
export function builtinModules(): Record<string, ModuleDefinition> {
  const out: Record<string, ModuleDefinition> = {};
  for (const [name, raw] of Object.entries(BUILTIN)) {
    const prober = (raw as { prober: string }).prober;
    if (!kinds()[prober]) continue;
    const ctx: ParseContext = { issues: [], envSources: new Map() };
    const def = moduleSchema.parse(raw, name, ctx);
    if (def) out[name] = def;
  }
  return out;
}

/**
 * The modules of a prober config: the built-ins, overridden by `modules_file` (a blackbox.yml),
 * overridden by inline `modules:`. Throws ConfigError (path-named) for a bad file.
 */
export function loadModuleDefinitions(cfg: { modules_file?: string; modules?: Readonly<Record<string, ModuleDefinition>> }): Record<string, ModuleDefinition> {
  const fromFile = cfg.modules_file !== undefined ? loadConfig(blackboxFileSchema, { file: cfg.modules_file, env: {} }).modules : {};
  return { ...builtinModules(), ...fromFile, ...(cfg.modules ?? {}) };
}

interface Configured {
  probe: Probe;
  def: ModuleDefinition;
}

/** The configured probe modules of one prober. */
export class ProbeModules {
  private readonly modules = new Map<string, Configured>();

  /** Builds every module's probe once (throws on a bad module definition, e.g. a missing CA file). */
  constructor(definitions: Readonly<Record<string, ModuleDefinition>> = builtinModules(), deps: ProbeDeps = {}) {
    for (const [name, def] of Object.entries(definitions)) {
      const kind = kinds()[def.prober];
      if (!kind) throw new Error(`module ${name}: unknown prober ${JSON.stringify(def.prober)}`);
      const options = def[def.prober] ?? kind.schema.defaultValue?.();
      try {
        this.modules.set(name, { probe: kind.create(options, deps), def });
      } catch (err) {
        throw new Error(`module ${name}: ${(err as Error).message}`, { cause: err });
      }
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

  /** The definition of `module` (for /probe debug output). */
  definition(module: string): ModuleDefinition | undefined {
    return this.modules.get(module)?.def;
  }

  /** The module's own timeout cap in ms, if it has one. */
  timeoutMs(module: string): number | undefined {
    return this.modules.get(module)?.def.timeoutMs;
  }

  /** The timeout a probe of `module` gets: the target's, capped by the module's. */
  effectiveTimeoutMs(module: string, targetTimeoutMs: number): number {
    const cap = this.timeoutMs(module);
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
