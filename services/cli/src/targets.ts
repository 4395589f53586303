/** `probemesh targets add|list|rm`. */
import { formatDurationMs, parseDurationMs, toNumber } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminAddress, adminOptions, parse } from './command';
import { UsageError } from './errors';
import { renderTable } from './table';

const HELP = `Usage:
  probemesh targets add URL [--module M] [--interval D] [--timeout D] [--replication N] [--label k=v]...
  probemesh targets list [--module M]
  probemesh targets rm URL|ID [--module M]

Manage the targets the mesh probes (stored by the coordinator in NATS KV pm_targets).

Options:
  --module M         probe module (default http_2xx)
  --interval D       probe interval, e.g. 15s, 500ms (default: the coordinator's, 15s)
  --timeout D        probe timeout, below the interval (default: the coordinator's, 5s)
  --replication N    number of distinct probers probing the target (default 1)
  --label k=v        a label added to every series of the target (repeatable)
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh targets add https://api.example.com/health --interval 5s --label team=payments
  probemesh targets list --json
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
  const res = await withAdmin(adminAddress(values.addr), (c) =>
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
  const { values } = parse('targets list', args, { ...adminOptions, module: { type: 'string' } }, false);
  const res = await withAdmin(adminAddress(values.addr), (c) => c.listTargets({ module: values.module ?? '' }));
  const targets = res.targets ?? [];
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

async function rm(args: string[]): Promise<number> {
  const { values, positionals } = parse('targets rm', args, { ...adminOptions, module: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('targets rm: give exactly one URL or target id');
  const arg = positionals[0]!;
  const byId = /^[0-9a-f]{32}$/.test(arg);
  const res = await withAdmin(adminAddress(values.addr), (c) => c.removeTarget(byId ? { id: arg } : { url: arg, module: values.module ?? '' }));
  if (values.json) process.stdout.write(JSON.stringify(targetJson(res.target ?? {}), null, 2) + '\n');
  else process.stdout.write(`removed ${res.target?.url} (module ${res.target?.module})\n`);
  return 0;
}

/** `probemesh targets`. */
export const targetsCommand: Command = {
  name: 'targets',
  summary: 'Add, list and remove targets (targets add|list|rm)',
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
      default:
        throw new UsageError(`targets: expected add, list or rm${sub ? `, got ${JSON.stringify(sub)}` : ''} (see probemesh targets --help)`);
    }
  },
};
