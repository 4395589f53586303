/**
 * Target queries and bulk changes of the AdminService: label selectors, pagination,
 * get, update, import (Prometheus file_sd JSON or a plain list) and the module listing.
 * Every input is validated completely before anything is written, and errors name the
 * field (`selector`, `page_token`, `content[2].targets[0]`, `content line 7`, ...).
 */
import { InvalidArgumentError, NotFoundError, targetId } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { KV } from 'nats';
import { TargetDefaults } from './config';
import { compareTargets, Target, TargetRegistry } from './targets';
import { removeTargetId, validateAddTarget, ValidTarget } from './validate';

/** Most targets one ImportTargets call may carry. */
export const MAX_IMPORT_TARGETS = 10_000;
/** Largest page of ListTargets. */
export const MAX_PAGE_SIZE = 10_000;
/** Longest label selector. */
export const MAX_SELECTOR_LENGTH = 4096;

/** One label matcher of a selector. */
export interface LabelMatcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
  re?: RegExp;
}

const MATCHER_RE = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^,"\s]*))\s*(?:,|$)/;

/** Parses `name="v",other!="w",x=~"re"` (braces optional); throws naming `selector`. */
export function parseSelector(text: string): LabelMatcher[] {
  if (text.length > MAX_SELECTOR_LENGTH) throw new InvalidArgumentError('selector', `longer than ${MAX_SELECTOR_LENGTH} characters`);
  let rest = text.trim().replace(/^\{/, '').replace(/\}$/, '').trim();
  const out: LabelMatcher[] = [];
  while (rest !== '') {
    const m = MATCHER_RE.exec(rest);
    if (!m) throw new InvalidArgumentError('selector', `cannot parse ${JSON.stringify(rest)} (use name="value", name!="value", name=~"regex", name!~"regex", separated by commas)`);
    const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[4] ?? '');
    const matcher: LabelMatcher = { name: m[1]!, op: m[2] as LabelMatcher['op'], value };
    if (matcher.op === '=~' || matcher.op === '!~') {
      try {
        matcher.re = new RegExp(`^(?:${value})$`);
      } catch (err) {
        throw new InvalidArgumentError('selector', `invalid regex for ${matcher.name}: ${(err as Error).message}`);
      }
    }
    out.push(matcher);
    rest = rest.slice(m[0].length).trim();
  }
  return out;
}

/** Whether `t` matches every matcher (`instance` and `module` match the URL and module). */
export function selects(t: Target, matchers: readonly LabelMatcher[]): boolean {
  return matchers.every((m) => {
    const v = m.name === 'instance' ? t.url : m.name === 'module' ? t.module : (t.labels?.[m.name] ?? '');
    switch (m.op) {
      case '=':
        return v === m.value;
      case '!=':
        return v !== m.value;
      case '=~':
        return m.re!.test(v);
      case '!~':
        return !m.re!.test(v);
    }
  });
}

function pageToken(t: Target): string {
  return Buffer.from(JSON.stringify([t.url, t.module])).toString('base64url');
}

function afterToken(token: string): (t: Target) => boolean {
  let key: [string, string];
  try {
    key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Array.isArray(key) || key.length !== 2 || typeof key[0] !== 'string' || typeof key[1] !== 'string') throw new Error('shape');
  } catch {
    throw new InvalidArgumentError('page_token', 'not a token returned by ListTargets');
  }
  const probe = { url: key[0], module: key[1] } as Target;
  return (t) => compareTargets(t, probe) > 0;
}

/** ListTargets with module, selector and pagination. */
export function listTargets(registry: TargetRegistry, req: probemesh.v1.IListTargetsRequest): probemesh.v1.IListTargetsResponse {
  const matchers = parseSelector(req.selector ?? '');
  const size = req.pageSize ?? 0;
  if (size > MAX_PAGE_SIZE) throw new InvalidArgumentError('page_size', `at most ${MAX_PAGE_SIZE}, got ${size}`);
  const all = registry.list(req.module || undefined).filter((t) => selects(t, matchers));
  const after = req.pageToken ? afterToken(req.pageToken) : () => true;
  const rest = all.filter(after);
  const page = size > 0 ? rest.slice(0, size) : rest;
  const last = page[page.length - 1];
  return { targets: page, total: all.length, nextPageToken: size > 0 && rest.length > size && last ? pageToken(last) : '' };
}

/** GetTarget. */
export function getTarget(registry: TargetRegistry, req: probemesh.v1.IGetTargetRequest, defaults: TargetDefaults): Target {
  const id = removeTargetId(req, defaults);
  const t = registry.get(id);
  if (!t) throw new NotFoundError(`no target ${req.id ? `with id ${req.id}` : `${req.url} (module ${req.module || defaults.module})`}`);
  return t;
}

/** UpdateTarget: the merged target, validated like AddTarget (URL and module stay). */
export function updatedTarget(existing: Target, req: probemesh.v1.IUpdateTargetRequest, defaults: TargetDefaults): ValidTarget {
  const labels: Record<string, string> = req.replaceLabels ? {} : { ...(existing.labels ?? {}) };
  Object.assign(labels, req.labels ?? {});
  for (const name of req.removeLabels ?? []) {
    if (!(name in labels)) throw new InvalidArgumentError(`remove_labels.${name}`, 'the target has no such label');
    delete labels[name];
  }
  const intervalMs = req.intervalMs || existing.intervalMs;
  // Keep the old timeout unless it no longer fits a shorter interval the caller set.
  const timeoutMs = req.timeoutMs || (existing.timeoutMs < intervalMs ? existing.timeoutMs : 0);
  return validateAddTarget({ url: existing.url, module: existing.module, intervalMs, timeoutMs, replication: req.replication || existing.replication, labels }, defaults);
}

interface ImportEntry {
  field: string;
  request: probemesh.v1.IAddTargetRequest;
}

function importEntries(req: probemesh.v1.IImportTargetsRequest): ImportEntry[] {
  const base = { intervalMs: req.intervalMs ?? 0, timeoutMs: req.timeoutMs ?? 0, replication: req.replication ?? 0 };
  const content = req.content ?? '';
  if (content.trim() === '') throw new InvalidArgumentError('content', 'empty');
  const out: ImportEntry[] = [];
  if (req.format === 'list') {
    content.split('\n').forEach((line, i) => {
      const url = line.replace(/#.*$/, '').trim();
      if (url) out.push({ field: `content line ${i + 1}`, request: { ...base, url, module: req.module ?? '' } });
    });
  } else if (req.format === 'file_sd') {
    let groups: unknown;
    try {
      groups = JSON.parse(content);
    } catch (err) {
      throw new InvalidArgumentError('content', `not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(groups)) throw new InvalidArgumentError('content', 'file_sd JSON must be a list of {targets, labels} groups');
    groups.forEach((g: unknown, gi) => {
      const field = `content[${gi}]`;
      if (g === null || typeof g !== 'object' || Array.isArray(g)) throw new InvalidArgumentError(field, 'must be an object with "targets" and optional "labels"');
      const { targets, labels, ...extra } = g as Record<string, unknown>;
      const unknown = Object.keys(extra);
      if (unknown.length) throw new InvalidArgumentError(`${field}.${unknown[0]}`, 'unknown key (file_sd groups have "targets" and "labels")');
      if (!Array.isArray(targets)) throw new InvalidArgumentError(`${field}.targets`, 'must be a list of strings');
      const own: Record<string, string> = {};
      let module = req.module ?? '';
      for (const [k, v] of Object.entries((labels ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new InvalidArgumentError(`${field}.labels.${k}`, 'must be a string');
        if (k === '__param_module') module = v;
        else if (!k.startsWith('__')) own[k] = v;
      }
      targets.forEach((t: unknown, ti) => {
        if (typeof t !== 'string') throw new InvalidArgumentError(`${field}.targets[${ti}]`, 'must be a string');
        out.push({ field: `${field}.targets[${ti}]`, request: { ...base, url: t, module, labels: own } });
      });
    });
  } else {
    throw new InvalidArgumentError('format', `must be "file_sd" or "list", got ${JSON.stringify(req.format ?? '')}`);
  }
  if (out.length === 0) throw new InvalidArgumentError('content', 'no targets in it');
  if (out.length > MAX_IMPORT_TARGETS) throw new InvalidArgumentError('content', `at most ${MAX_IMPORT_TARGETS} targets per call, got ${out.length} (split the import)`);
  return out;
}

function sameTarget(a: Target, b: ValidTarget): boolean {
  const la = a.labels ?? {};
  const lb = b.labels;
  return a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs && a.replication === b.replication && Object.keys(la).length === Object.keys(lb).length && Object.entries(lb).every(([k, v]) => la[k] === v);
}

/**
 * ImportTargets: validates every entry (the first bad one is named, with its place in
 * the file, and nothing is written), then upserts the changed ones.
 */
export async function importTargets(registry: TargetRegistry, req: probemesh.v1.IImportTargetsRequest, defaults: TargetDefaults): Promise<probemesh.v1.IImportTargetsResponse> {
  const valid = new Map<string, ValidTarget>();
  for (const e of importEntries(req)) {
    let v: ValidTarget;
    try {
      v = validateAddTarget(e.request, defaults);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${e.field}${err.field === 'url' ? '' : `.${err.field}`}`, err.message.slice(err.field.length + 2));
      throw err;
    }
    valid.set(v.id, v);
  }
  let added = 0;
  let updated = 0;
  let unchanged = 0;
  const writes: ValidTarget[] = [];
  for (const v of valid.values()) {
    const cur = registry.get(v.id);
    if (!cur) added++;
    else if (sameTarget(cur, v)) {
      unchanged++;
      continue;
    } else updated++;
    writes.push(v);
  }
  if (!req.dryRun) for (const v of writes) await registry.put(v);
  return { added, updated, unchanged };
}

/** ListModules from the probers' registrations in KV pm_probers. */
export async function listModules(probersKv: KV, proberIds: readonly string[]): Promise<probemesh.v1.IListModulesResponse> {
  const byName = new Map<string, { prober: string; config: string; probers: string[] }>();
  for (const id of proberIds) {
    const e = await probersKv.get(id);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) continue;
    const hb = probemesh.v1.Heartbeat.decode(e.value);
    let modules: Record<string, { prober?: string }> = {};
    try {
      modules = hb.modulesJson ? JSON.parse(hb.modulesJson) : Object.fromEntries(hb.modules.map((m) => [m, {}]));
    } catch {
      continue;
    }
    for (const [name, def] of Object.entries(modules)) {
      const cur = byName.get(name) ?? { prober: def.prober ?? '', config: JSON.stringify(def), probers: [] };
      cur.probers.push(id);
      byName.set(name, cur);
    }
  }
  return {
    modules: [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, m]) => ({ name, prober: m.prober, configJson: m.config, probers: m.probers.sort() })),
  };
}

/** The id a Get/Update request names (for NOT_FOUND messages and audit). */
export function requestedId(req: { id?: string | null; url?: string | null; module?: string | null }, defaults: TargetDefaults): string {
  return req.id || targetId(req.module || defaults.module, req.url ?? '');
}
