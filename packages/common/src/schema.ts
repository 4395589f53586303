/**
 * A small typed schema for configuration: parse unknown YAML/JSON into a typed,
 * frozen value, applying defaults, rejecting unknown keys, and naming the path of
 * every bad field. Also tells which leaves exist, for `PROBEMESH_*` env overrides.
 */
import { ConfigIssue } from './errors';
import { parseDurationMs } from './duration';

/** Collects issues while parsing. */
export interface ParseContext {
  issues: ConfigIssue[];
  /** Paths whose raw value came from an environment variable (path → variable). */
  envSources: Map<string, string>;
}

/** How a leaf's environment override string is converted before parsing. */
export type EnvKind = 'string' | 'number' | 'boolean' | 'list';

/** A schema for values of type T. */
export interface Schema<T> {
  /** Human description of the expected value, used in messages and docs. */
  readonly expected: string;
  /** Value used when the key is absent; `undefined` = required (unless optional). */
  readonly defaultValue?: () => T;
  /** Set when the value may be absent with no default. */
  readonly optional?: boolean;
  /** Doc text for docs/CONFIG.md. */
  readonly doc?: string;
  /** For leaves: how an env override string is converted. Objects have none. */
  readonly envKind?: EnvKind;
  /** For objects: the field schemas. */
  readonly fields?: Readonly<Record<string, Schema<unknown>>>;
  /** Parses `value` found at `path`; pushes issues and returns undefined on error. */
  parse(value: unknown, path: string, ctx: ParseContext): T | undefined;
}

function issue(ctx: ParseContext, path: string, message: string): undefined {
  ctx.issues.push({ path, message, env: ctx.envSources.get(path) });
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

interface Common<T> {
  default?: T;
  doc?: string;
}

function withDefault<T>(base: Omit<Schema<T>, 'defaultValue'>, opts?: Common<T>): Schema<T> {
  const def = opts?.default;
  return {
    ...base,
    doc: opts?.doc,
    defaultValue: def === undefined ? undefined : () => (Array.isArray(def) ? ([...def] as T) : def),
  };
}

/** A string; `nonEmpty` rejects "", `pattern` must match, `oneOf` restricts values. */
export function str(opts?: Common<string> & { nonEmpty?: boolean; pattern?: RegExp; oneOf?: readonly string[] }): Schema<string> {
  const expected = opts?.oneOf ? `one of ${opts.oneOf.map((s) => JSON.stringify(s)).join(', ')}` : 'a string';
  return withDefault<string>(
    {
      expected,
      envKind: 'string',
      parse(v, path, ctx) {
        if (typeof v !== 'string') return issue(ctx, path, `expected ${expected}, got ${typeName(v)}`);
        if (opts?.nonEmpty && v === '') return issue(ctx, path, 'must not be empty');
        if (opts?.oneOf && !opts.oneOf.includes(v)) return issue(ctx, path, `expected ${expected}, got ${JSON.stringify(v)}`);
        if (opts?.pattern && !opts.pattern.test(v)) return issue(ctx, path, `${JSON.stringify(v)} does not match ${opts.pattern}`);
        return v;
      },
    },
    opts,
  );
}

/** A number; `int` requires an integer; `min`/`max` inclusive bounds. */
export function num(opts?: Common<number> & { int?: boolean; min?: number; max?: number }): Schema<number> {
  const expected = opts?.int ? 'an integer' : 'a number';
  return withDefault<number>(
    {
      expected,
      envKind: 'number',
      parse(v, path, ctx) {
        if (typeof v !== 'number' || !Number.isFinite(v)) return issue(ctx, path, `expected ${expected}, got ${typeName(v)}`);
        if (opts?.int && !Number.isInteger(v)) return issue(ctx, path, `expected an integer, got ${v}`);
        if (opts?.min !== undefined && v < opts.min) return issue(ctx, path, `must be >= ${opts.min}, got ${v}`);
        if (opts?.max !== undefined && v > opts.max) return issue(ctx, path, `must be <= ${opts.max}, got ${v}`);
        return v;
      },
    },
    opts,
  );
}

/** A boolean (YAML true/false). */
export function bool(opts?: Common<boolean>): Schema<boolean> {
  return withDefault<boolean>(
    {
      expected: 'true or false',
      envKind: 'boolean',
      parse(v, path, ctx) {
        if (typeof v !== 'boolean') return issue(ctx, path, `expected true or false, got ${typeName(v)}`);
        return v;
      },
    },
    opts,
  );
}

/** A Prometheus duration string ("5s", "250ms", "1m30s"), parsed to milliseconds. */
export function duration(opts?: { default?: string; doc?: string; minMs?: number; maxMs?: number }): Schema<number> {
  const def = opts?.default === undefined ? undefined : parseDurationMs(opts.default);
  return withDefault<number>(
    {
      expected: 'a duration like "5s" or "250ms"',
      envKind: 'string',
      parse(v, path, ctx) {
        if (typeof v !== 'string') return issue(ctx, path, `expected a duration like "5s" or "250ms", got ${typeName(v)}`);
        const ms = parseDurationMs(v);
        if (ms === undefined) return issue(ctx, path, `invalid duration ${JSON.stringify(v)} (use e.g. "5s", "250ms", "1m30s")`);
        if (opts?.minMs !== undefined && ms < opts.minMs) return issue(ctx, path, `must be at least ${opts.minMs}ms, got ${v}`);
        if (opts?.maxMs !== undefined && ms > opts.maxMs) return issue(ctx, path, `must be at most ${opts.maxMs}ms, got ${v}`);
        return ms;
      },
    },
    { doc: opts?.doc, default: def },
  );
}

/** An absolute URL whose scheme is one of `schemes` (without the colon). */
export function url(opts: Common<string> & { schemes: readonly string[] }): Schema<string> {
  const expected = `a URL with scheme ${opts.schemes.join(' or ')}`;
  return withDefault<string>(
    {
      expected,
      envKind: 'string',
      parse(v, path, ctx) {
        if (typeof v !== 'string') return issue(ctx, path, `expected ${expected}, got ${typeName(v)}`);
        let u: URL;
        try {
          u = new URL(v);
        } catch {
          return issue(ctx, path, `invalid URL ${JSON.stringify(v)}`);
        }
        const scheme = u.protocol.replace(/:$/, '');
        if (!opts.schemes.includes(scheme)) return issue(ctx, path, `URL scheme must be ${opts.schemes.join(' or ')}, got ${JSON.stringify(scheme)} in ${JSON.stringify(v)}`);
        if (!u.hostname) return issue(ctx, path, `URL has no host: ${JSON.stringify(v)}`);
        return v;
      },
    },
    opts,
  );
}

/** A `host:port` listen address; port 0 picks a free port. */
export function listenAddress(opts?: Common<string>): Schema<string> {
  return withDefault<string>(
    {
      expected: 'a listen address "host:port"',
      envKind: 'string',
      parse(v, path, ctx) {
        if (typeof v !== 'string') return issue(ctx, path, `expected a listen address "host:port", got ${typeName(v)}`);
        const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})$/.exec(v);
        if (!m || Number(m[2]) > 65535) return issue(ctx, path, `invalid listen address ${JSON.stringify(v)} (use "host:port", e.g. "0.0.0.0:9115")`);
        return v;
      },
    },
    opts,
  );
}

/** A list of `item`. */
export function list<T>(item: Schema<T>, opts?: Common<T[]> & { minItems?: number }): Schema<T[]> {
  return withDefault<T[]>(
    {
      expected: `a list of ${item.expected}`,
      envKind: 'list',
      parse(v, path, ctx) {
        if (!Array.isArray(v)) return issue(ctx, path, `expected a list, got ${typeName(v)}`);
        if (opts?.minItems !== undefined && v.length < opts.minItems) return issue(ctx, path, `needs at least ${opts.minItems} item(s)`);
        const out: T[] = [];
        let ok = true;
        v.forEach((x, i) => {
          const r = item.parse(x, `${path}[${i}]`, ctx);
          if (r === undefined) ok = false;
          else out.push(r);
        });
        return ok ? out : undefined;
      },
    },
    opts,
  );
}

/** A mapping of string keys to `value` (keys checked against `keyPattern`). */
export function record<T>(value: Schema<T>, opts?: Common<Record<string, T>> & { keyPattern?: RegExp }): Schema<Record<string, T>> {
  return withDefault<Record<string, T>>(
    {
      expected: `a mapping of ${value.expected}`,
      parse(v, path, ctx) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return issue(ctx, path, `expected a mapping, got ${typeName(v)}`);
        const out: Record<string, T> = {};
        let ok = true;
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          const p = path ? `${path}.${k}` : k;
          if (opts?.keyPattern && !opts.keyPattern.test(k)) {
            issue(ctx, p, `invalid key ${JSON.stringify(k)} (must match ${opts.keyPattern})`);
            ok = false;
            continue;
          }
          const r = value.parse(x, p, ctx);
          if (r === undefined) ok = false;
          else out[k] = r;
        }
        return ok ? out : undefined;
      },
    },
    opts,
  );
}

/** Marks a schema optional: absent (or null) parses to undefined without an issue. */
export function optional<T>(s: Schema<T>): Schema<T | undefined> {
  return { ...s, optional: true, defaultValue: undefined } as Schema<T | undefined>;
}

/** The parsed type of an object schema's fields. */
export type Infer<S> = S extends Schema<infer T> ? T : never;
type FieldsOf<F extends Record<string, Schema<unknown>>> = { [K in keyof F]: Infer<F[K]> };

/**
 * A mapping with exactly these keys: unknown keys are rejected with their path,
 * absent keys take their default (an object with all-defaulted fields defaults to
 * its defaults), absent required keys are reported.
 */
export function obj<F extends Record<string, Schema<unknown>>>(fields: F, opts?: { doc?: string; check?: (v: FieldsOf<F>, path: string, ctx: ParseContext) => void }): Schema<FieldsOf<F>> {
  const allDefaulted = Object.values(fields).every((f) => f.defaultValue !== undefined || f.optional || (f.fields !== undefined && f.defaultValue !== undefined));
  const self: Schema<FieldsOf<F>> = {
    expected: 'a mapping',
    fields,
    doc: opts?.doc,
    defaultValue: allDefaulted ? () => self.parse({}, '', { issues: [], envSources: new Map() }) as FieldsOf<F> : undefined,
    parse(v, path, ctx) {
      if (v === null || v === undefined) v = {};
      if (typeof v !== 'object' || Array.isArray(v)) return issue(ctx, path, `expected a mapping, got ${typeName(v)}`);
      const input = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const k of Object.keys(input)) {
        if (!(k in fields)) {
          issue(ctx, path ? `${path}.${k}` : k, `unknown key (allowed here: ${Object.keys(fields).join(', ')})`);
          ok = false;
        }
      }
      for (const [k, f] of Object.entries(fields)) {
        const p = path ? `${path}.${k}` : k;
        const raw = input[k];
        if (raw === undefined || raw === null) {
          if (f.defaultValue) out[k] = f.defaultValue();
          else if (f.optional) out[k] = undefined;
          else {
            issue(ctx, p, `required (${f.expected})`);
            ok = false;
          }
          continue;
        }
        const r = f.parse(raw, p, ctx);
        if (r === undefined) ok = false;
        else out[k] = r;
      }
      if (!ok) return undefined;
      const before = ctx.issues.length;
      opts?.check?.(out as FieldsOf<F>, path, ctx);
      return ctx.issues.length === before ? (out as FieldsOf<F>) : undefined;
    },
  };
  return self;
}

/** Records a cross-field issue from an `obj` `check` callback. */
export function addIssue(ctx: ParseContext, path: string, message: string): void {
  issue(ctx, path, message);
}

/** A leaf of an object schema, with its env variable name. */
export interface SchemaLeaf {
  /** Key path segments, e.g. ['nats', 'servers']. */
  path: string[];
  /** `PROBEMESH_` + path joined by `_`, upper-cased: PROBEMESH_NATS_SERVERS. */
  env: string;
  /** The leaf schema. */
  schema: Schema<unknown>;
}

/** Lists the leaves of an object schema (nested objects are walked, lists are leaves). */
export function schemaLeaves(schema: Schema<unknown>, prefix: string[] = []): SchemaLeaf[] {
  if (!schema.fields) return [{ path: prefix, env: 'PROBEMESH_' + prefix.join('_').toUpperCase(), schema }];
  return Object.entries(schema.fields).flatMap(([k, f]) => schemaLeaves(f, [...prefix, k]));
}
