/**
 * Validation of AddTarget input. Pure: either returns the complete target (defaults
 * applied, id computed) or throws one {@link InvalidArgumentError} naming the first
 * bad field, so nothing is ever partially applied.
 */
import { InvalidArgumentError, targetId } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { MODULE_NAME_RE, TargetDefaults } from './config';

/** Smallest accepted probe interval. */
export const MIN_INTERVAL_MS = 100;
/** Largest accepted probe interval (1 h). */
export const MAX_INTERVAL_MS = 3_600_000;
/** Largest replication factor. */
export const MAX_REPLICATION = 10;
/** Most labels a target may carry. */
export const MAX_LABELS = 32;
/** Longest label value. */
export const MAX_LABEL_VALUE_LENGTH = 1024;
/** Longest target URL / address. */
export const MAX_URL_LENGTH = 2048;
/** Longest module name. */
export const MAX_MODULE_LENGTH = 128;
/** Label names the mesh sets itself on every series. */
export const RESERVED_LABELS: readonly string[] = ['instance', 'module', 'prober', 'zone', 'job'];

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE_RE = /[\s\u0000-\u001f\u007f]/;

/** A validated target, ready to store (timestamps are set by the registry). */
export interface ValidTarget {
  /** `targetId(module, url)`. */
  id: string;
  /** Target URL (http modules) or address, exactly as given. */
  url: string;
  /** Probe module. @default target_defaults.module */
  module: string;
  /** Probe interval (100 ms .. 1 h). @default target_defaults.interval */
  intervalMs: number;
  /** Probe timeout, below the interval. @default min(target_defaults.timeout, 80% of the interval) */
  timeoutMs: number;
  /** Distinct probers per target (1..10). @default target_defaults.replication */
  replication: number;
  /** The target's own labels. */
  labels: Record<string, string>;
}

/** Whether `module` probes URLs (http modules, including the default module when it is one). */
export function isHttpModule(module: string): boolean {
  return module.startsWith('http');
}

/** The timeout a target gets when none is given: the default, capped at 80% of the interval. */
export function defaultTimeoutMs(intervalMs: number, defaults: TargetDefaults): number {
  return Math.max(1, Math.min(defaults.timeout, Math.floor(intervalMs * 0.8)));
}

function checkUrl(url: string, module: string): void {
  if (url === '') throw new InvalidArgumentError('url', 'required');
  if (url.length > MAX_URL_LENGTH) throw new InvalidArgumentError('url', `longer than ${MAX_URL_LENGTH} characters`);
  if (CONTROL_OR_SPACE_RE.test(url)) throw new InvalidArgumentError('url', `must not contain whitespace or control characters: ${JSON.stringify(url)}`);
  if (!isHttpModule(module)) return;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError('url', `not an absolute URL: ${JSON.stringify(url)} (module ${module} needs http:// or https://)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidArgumentError('url', `scheme must be http or https, got ${JSON.stringify(u.protocol.replace(/:$/, ''))} in ${JSON.stringify(url)}`);
  }
  if (u.hostname === '') throw new InvalidArgumentError('url', `no host in ${JSON.stringify(url)}`);
}

function checkLabels(labels: Record<string, string>): void {
  const names = Object.keys(labels).sort();
  if (names.length > MAX_LABELS) throw new InvalidArgumentError('labels', `at most ${MAX_LABELS} labels, got ${names.length}`);
  for (const name of names) {
    const field = `labels.${name}`;
    if (!LABEL_NAME_RE.test(name)) throw new InvalidArgumentError(field, `invalid label name ${JSON.stringify(name)} (must match ${LABEL_NAME_RE})`);
    if (name.startsWith('__')) throw new InvalidArgumentError(field, 'label names starting with "__" are reserved');
    if (RESERVED_LABELS.includes(name)) throw new InvalidArgumentError(field, `label name ${JSON.stringify(name)} is reserved (set by the mesh: ${RESERVED_LABELS.join(', ')})`);
    const value = labels[name] ?? '';
    if (value.length > MAX_LABEL_VALUE_LENGTH) throw new InvalidArgumentError(field, `value longer than ${MAX_LABEL_VALUE_LENGTH} characters`);
  }
}

/**
 * Validates an AddTarget request and applies `defaults` to unset fields (proto3: 0 or
 * empty means unset). Throws {@link InvalidArgumentError} whose `field` is one of
 * `url`, `module`, `interval_ms`, `timeout_ms`, `replication`, `labels` or
 * `labels.<name>`.
 */
export function validateAddTarget(req: probemesh.v1.IAddTargetRequest, defaults: TargetDefaults): ValidTarget {
  const module = req.module || defaults.module;
  if (module.length > MAX_MODULE_LENGTH) throw new InvalidArgumentError('module', `longer than ${MAX_MODULE_LENGTH} characters`);
  if (!MODULE_NAME_RE.test(module)) throw new InvalidArgumentError('module', `invalid module name ${JSON.stringify(module)} (must match ${MODULE_NAME_RE})`);

  const url = req.url ?? '';
  checkUrl(url, module);

  const intervalMs = req.intervalMs || defaults.interval;
  if (intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) {
    throw new InvalidArgumentError('interval_ms', `must be between ${MIN_INTERVAL_MS} and ${MAX_INTERVAL_MS} (1h), got ${intervalMs}`);
  }

  const timeoutMs = req.timeoutMs || defaultTimeoutMs(intervalMs, defaults);
  if (timeoutMs >= intervalMs) throw new InvalidArgumentError('timeout_ms', `must be below interval_ms (${intervalMs}), got ${timeoutMs}`);

  const replication = req.replication || defaults.replication;
  if (replication < 1 || replication > MAX_REPLICATION) throw new InvalidArgumentError('replication', `must be between 1 and ${MAX_REPLICATION}, got ${replication}`);

  const labels = { ...(req.labels ?? {}) };
  checkLabels(labels);

  return { id: targetId(module, url), url, module, intervalMs, timeoutMs, replication, labels };
}

/** Resolves a RemoveTarget request to a target id (`id`, or `url` + `module`). */
export function removeTargetId(req: probemesh.v1.IRemoveTargetRequest, defaults: TargetDefaults): string {
  if (req.id) return req.id;
  if (!req.url) throw new InvalidArgumentError('id', 'either id or url is required');
  const module = req.module || defaults.module;
  if (!MODULE_NAME_RE.test(module)) throw new InvalidArgumentError('module', `invalid module name ${JSON.stringify(module)} (must match ${MODULE_NAME_RE})`);
  return targetId(module, req.url);
}
