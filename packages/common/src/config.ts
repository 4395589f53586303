/**
 * Loads a service's configuration: YAML file (optional) + `PROBEMESH_*` environment
 * overrides, validated by a {@link Schema}, then deep-frozen.
 *
 * Environment overrides: every leaf key of the schema has a variable named
 * `PROBEMESH_` + its path joined by `_`, upper-cased (`nats.servers` →
 * `PROBEMESH_NATS_SERVERS`). Numbers and booleans are converted; lists are
 * comma-separated. Variables that name no leaf of this service are ignored, because one
 * environment may carry the variables of several services.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError, ErrorCodes, ProbemeshError } from './errors';
import { ParseContext, Schema, schemaLeaves } from './schema';

/** Where to read configuration from. */
export interface LoadConfigOptions {
  /** YAML file path; absent = defaults + env only. */
  file?: string;
  /** YAML text (instead of `file`), e.g. from a test. */
  text?: string;
  /** Environment to read overrides from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Recursively freezes an object graph. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

function envValue(kind: string | undefined, raw: string): unknown {
  switch (kind) {
    case 'number': {
      const n = Number(raw);
      return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
    }
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
    default:
      return raw;
  }
}

/** Parses YAML text into a plain value, naming the source on a syntax error. */
export function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    const pos = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new ProbemeshError(ErrorCodes.CONFIG_UNREADABLE, `cannot parse ${source}${pos}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/**
 * Loads and validates a configuration. Throws {@link ConfigError} listing every bad
 * field by path, or a `PM_CONFIG_UNREADABLE` error when the file cannot be read.
 */
export function loadConfig<T>(schema: Schema<T>, opts: LoadConfigOptions = {}): T {
  const source = opts.file ?? (opts.text !== undefined ? '(inline)' : '(defaults)');
  let raw: unknown = {};
  let text = opts.text;
  if (opts.file !== undefined) {
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ProbemeshError(ErrorCodes.CONFIG_UNREADABLE, `cannot read config file ${opts.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
  if (text !== undefined) raw = parseYamlText(text, source) ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new ConfigError(source, [{ path: '', message: 'the config must be a YAML mapping' }]);
  }
  const ctx: ParseContext = { issues: [], envSources: new Map() };
  const env = opts.env ?? process.env;
  for (const leaf of schemaLeaves(schema as Schema<unknown>)) {
    const v = env[leaf.env];
    if (v === undefined) continue;
    let node = raw as Record<string, unknown>;
    for (const seg of leaf.path.slice(0, -1)) {
      const next = node[seg];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[seg] = {};
      node = node[seg] as Record<string, unknown>;
    }
    node[leaf.path[leaf.path.length - 1]!] = envValue(leaf.schema.envKind, v);
    ctx.envSources.set(leaf.path.join('.'), leaf.env);
  }
  const parsed = schema.parse(raw, '', ctx);
  if (parsed === undefined || ctx.issues.length > 0) throw new ConfigError(source, ctx.issues);
  return deepFreeze(parsed);
}

/**
 * Renders a schema as a Markdown table (key, env variable, default, description)
 * for docs/CONFIG.md.
 */
export function describeSchema(schema: Schema<unknown>): string {
  const rows = schemaLeaves(schema).map((l) => {
    const def = l.schema.defaultValue ? JSON.stringify(l.schema.defaultValue()) : l.schema.optional ? '(none)' : '**required**';
    return `| \`${l.path.join('.')}\` | \`${l.env}\` | \`${def}\` | ${l.schema.doc ?? l.schema.expected} |`;
  });
  return ['| key | env override | default | description |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
