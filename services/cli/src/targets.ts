/** `probemesh targets add|list|get|rm|import`. */
import { readFileSync } from 'node:fs';
import { formatDurationMs, parseDurationMs, toNumber } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { UsageError } from './errors';
import { renderTable } from './table';

const HELP = `Usage:
  probemesh targets add URL [--module M] [--interval D] [--timeout D] [--replication N] [--label k=v]...
  probemesh targets list [--module M] [--selector SEL] [--page-size N]
  probemesh targets get URL|ID [--module M]
  probemesh targets rm URL|ID [--module M]
  probemesh targets import FILE [--format file_sd|list] [--module M] [--interval D] [--dry-run]

Manage the targets the mesh probes (stored by the coordinator in NATS KV pm_targets).

Options:
  --module M         probe module (default http_2xx)
  --interval D       probe interval, e.g. 15s, 500ms (default: the coordinator's, 15s)
  --timeout D        probe timeout, below the interval (default: the coordinator's, 5s)
  --replication N    number of distinct probers probing the target (default 1)
  --label k=v        a label added to every series of the target (repeatable)
  --selector SEL     list only targets matching labels: team="payments",env!="dev",tier=~"a|b"
  --page-size N      list page by page (N targets per request)
  --format F         import format: file_sd (Prometheus file_sd JSON, the default for .json)
                     or list (one target per line, # comments); imports are idempotent upserts
  --dry-run          import: validate everything and say what would change, change nothing
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh targets add https://api.example.com/health --interval 5s --label team=payments
  probemesh targets list --selector 'team="payments"' --json
  probemesh targets import targets.json --interval 30s
  probemesh targets rm https://api.example.com/health`;

function durationFlag(name: string, v: string | undefined): number {
  if (v === undefined) return 0;
  const ms = parseDurationMs(v);
  if (ms === undefined) throw new UsageError(`targets add: --${name} ${JSON.stringify(v)} is not a duration (use e.g. 15s, 500ms)`);
  return ms;
}

/** A target as printed in JSON output. */
function targetJson(t: probemesh.v1.ITarget) {
  return {
    id: t.id,
    url: t.url,
    module: t.module,
    interval_ms: t.intervalMs,
    timeout_ms: t.timeoutMs,
    replication: t.replication,
    labels: t.labels ?? {},
    created: new Date(toNumber(t.createdUnixNano) / 1e6).toISOString(),
  };
}

async function add(args: string[]): Promise<number> {
  const { values, positionals } = parse('targets add', args, {
    ...adminOptions,
    module: { type: 'string' },
    interval: { type: 'string' },
    timeout: { type: 'string' },
    replication: { type: 'string' },
    label: { type: 'string', multiple: true },
  });
  if (positionals.length !== 1) throw new UsageError('targets add: give exactly one URL (see probemesh targets --help)');
  const labels: Record<string, string> = {};
  for (const l of values.label ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError(`targets add: --label ${JSON.stringify(l)} must be name=value`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  const replication = values.replication === undefined ? 0 : Number(values.replication);
  if (!Number.isInteger(replication) || replication < 0) throw new UsageError(`targets add: --replication must be a positive integer, got ${JSON.stringify(values.replication)}`);
  const res = await withAdmin(adminTarget(values), (c) =>
    c.addTarget({
      url: positionals[0],
      module: values.module ?? '',
      intervalMs: durationFlag('interval', values.interval),
      timeoutMs: durationFlag('timeout', values.timeout),
      replication,
      labels,
    }),
  );
  const t = res.target!;
  if (values.json) process.stdout.write(JSON.stringify({ replaced: res.replaced, target: targetJson(t) }, null, 2) + '\n');
  else process.stdout.write(`${res.replaced ? 'updated' : 'added'} ${t.url} (module ${t.module}, every ${formatDurationMs(t.intervalMs ?? 0)}, id ${t.id})\n`);
  return 0;
}

async function list(args: string[]): Promise<number> {
  const { values } = parse('targets list', args, { ...adminOptions, module: { type: 'string' }, selector: { type: 'string' }, 'page-size': { type: 'string' } }, false);
  const pageSize = values['page-size'] === undefined ? 1000 : Number(values['page-size']);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new UsageError(`targets list: --page-size must be a positive integer, got ${JSON.stringify(values['page-size'])}`);
  const targets: probemesh.v1.ITarget[] = [];
  await withAdmin(adminTarget(values), async (c) => {
    let pageToken = '';
    do {
      const res = await c.listTargets({ module: values.module ?? '', selector: values.selector ?? '', pageSize, pageToken });
      targets.push(...(res.targets ?? []));
      pageToken = res.nextPageToken ?? '';
    } while (pageToken !== '');
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(targets.map(targetJson), null, 2) + '\n');
    return 0;
  }
  const rows = targets.map((t) => [
    t.url ?? '',
    t.module ?? '',
    formatDurationMs(t.intervalMs ?? 0),
    formatDurationMs(t.timeoutMs ?? 0),
    String(t.replication ?? 1),
    Object.entries(t.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '-',
  ]);
  process.stdout.write(renderTable(['URL', 'MODULE', 'INTERVAL', 'TIMEOUT', 'R', 'LABELS'], rows) + `\n${targets.length} target(s)\n`);
  return 0;
}

async function get(args: string[]): Promise<number> {
  const { values, positionals } = parse('targets get', args, { ...adminOptions, module: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('targets get: give exactly one URL or target id');
  const arg = positionals[0]!;
  const t = await withAdmin(adminTarget(values), (c) => c.getTarget(/^[0-9a-f]{32}$/.test(arg) ? { id: arg } : { url: arg, module: values.module ?? '' }));
  const j = targetJson(t);
  if (values.json) process.stdout.write(JSON.stringify(j, null, 2) + '\n');
  else process.stdout.write(renderTable(['FIELD', 'VALUE'], Object.entries(j).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])) + '\n');
  return 0;
}

/** Targets per ImportTargets call: small enough to show progress, large enough to be quick. */
const IMPORT_CHUNK = 500;

async function importCmd(args: string[]): Promise<number> {
  const { values, positionals } = parse('targets import', args, { ...adminOptions, module: { type: 'string' }, format: { type: 'string' }, interval: { type: 'string' }, timeout: { type: 'string' }, replication: { type: 'string' }, 'dry-run': { type: 'boolean', default: false } });
  if (positionals.length !== 1) throw new UsageError('targets import: give exactly one file (- for standard input)');
  const file = positionals[0]!;
  let content: string;
  try {
    content = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`targets import: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const format = values.format ?? (file.endsWith('.json') || content.trimStart().startsWith('[') ? 'file_sd' : 'list');
  if (format !== 'file_sd' && format !== 'list') throw new UsageError(`targets import: --format must be file_sd or list, got ${JSON.stringify(format)}`);
  const common = { module: values.module ?? '', intervalMs: durationFlag('interval', values.interval), timeoutMs: durationFlag('timeout', values.timeout), replication: values.replication === undefined ? 0 : Number(values.replication) };
  // Split into chunks of whole entries so each call stays small and progress shows.
  const chunks: string[] = [];
  if (format === 'list') {
    const lines = content.split('\n').filter((l) => l.replace(/#.*$/, '').trim() !== '');
    for (let i = 0; i < lines.length; i += IMPORT_CHUNK) chunks.push(lines.slice(i, i + IMPORT_CHUNK).join('\n'));
  } else {
    let groups: { targets?: unknown[]; labels?: unknown }[];
    try {
      groups = JSON.parse(content);
    } catch (err) {
      throw new UsageError(`targets import: ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(groups)) throw new UsageError(`targets import: ${file}: file_sd JSON must be a list of {targets, labels} groups`);
    let cur: unknown[] = [];
    let n = 0;
    for (const g of groups) {
      const size = Array.isArray(g?.targets) ? g.targets.length : 1;
      if (n > 0 && n + size > IMPORT_CHUNK) {
        chunks.push(JSON.stringify(cur));
        cur = [];
        n = 0;
      }
      cur.push(g);
      n += size;
    }
    if (cur.length) chunks.push(JSON.stringify(cur));
  }
  const total = { added: 0, updated: 0, unchanged: 0 };
  const progress = process.stderr.isTTY && !values.json;
  await withAdmin(adminTarget(values), async (c) => {
    // Validate the whole file first, so a bad entry anywhere changes nothing.
    for (const chunk of chunks) await c.importTargets({ format, content: chunk, ...common, dryRun: true });
    for (const [i, chunk] of chunks.entries()) {
      const r = await c.importTargets({ format, content: chunk, ...common, dryRun: values['dry-run'] });
      total.added += r.added;
      total.updated += r.updated;
      total.unchanged += r.unchanged;
      const done = total.added + total.updated + total.unchanged;
      if (progress) process.stderr.write(`\rimporting: ${i + 1}/${chunks.length} requests, ${done} targets`);
    }
  });
  if (progress) process.stderr.write('\n');
  if (values.json) process.stdout.write(JSON.stringify({ dry_run: values['dry-run'], ...total }, null, 2) + '\n');
  else process.stdout.write(`${values['dry-run'] ? 'would import' : 'imported'} ${file}: ${total.added} added, ${total.updated} updated, ${total.unchanged} unchanged\n`);
  return 0;
}

async function rm(args: string[]): Promise<number> {
  const { values, positionals } = parse('targets rm', args, { ...adminOptions, module: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('targets rm: give exactly one URL or target id');
  const arg = positionals[0]!;
  const byId = /^[0-9a-f]{32}$/.test(arg);
  const res = await withAdmin(adminTarget(values), (c) => c.removeTarget(byId ? { id: arg } : { url: arg, module: values.module ?? '' }));
  if (values.json) process.stdout.write(JSON.stringify(targetJson(res.target ?? {}), null, 2) + '\n');
  else process.stdout.write(`removed ${res.target?.url} (module ${res.target?.module})\n`);
  return 0;
}

/** `probemesh targets`. */
export const targetsCommand: Command = {
  name: 'targets',
  summary: 'Manage targets (targets add|list|get|rm|import)',
  help: HELP,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'add':
        return add(rest);
      case 'list':
      case 'ls':
        return list(rest);
      case 'rm':
      case 'remove':
        return rm(rest);
      case 'get':
        return get(rest);
      case 'import':
        return importCmd(rest);
      default:
        throw new UsageError(`targets: expected add, list, get, rm or import${sub ? `, got ${JSON.stringify(sub)}` : ''} (see probemesh targets --help)`);
    }
  },
};
