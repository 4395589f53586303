/** `probemesh probers`. */
import { toNumber } from '@probemesh/common';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { renderTable } from './table';

function ago(unixNano: number, nowMs: number): string {
  if (!unixNano) return '-';
  const s = (nowMs - unixNano / 1e6) / 1000;
  return s < 60 ? `${s.toFixed(1)}s ago` : `${Math.round(s / 60)}m ago`;
}

/** `probemesh probers`. */
export const probersCommand: Command = {
  name: 'probers',
  summary: 'List the probers the coordinator knows, with state and load',
  help: `Usage: probemesh probers [--json]

Lists every prober the coordinator has seen: state (alive, dead, leaving), zone,
assigned targets, version and last heartbeat.

Options:
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh probers
  probemesh probers --json | jq '.probers[] | select(.state != "alive")'`,
  async run(args) {
    const { values } = parse('probers', args, adminOptions, false);
    const res = await withAdmin(adminTarget(values), (c) => c.listProbers({}));
    const now = Date.now();
    const probers = (res.probers ?? []).map((p) => ({
      id: p.heartbeat?.prober ?? '',
      state: p.state ?? '',
      region: p.heartbeat?.region ?? '',
      zone: p.heartbeat?.zone ?? '',
      capacity: p.heartbeat?.capacity ?? 0,
      assigned_targets: p.assignedTargets ?? 0,
      applied_epoch: toNumber(p.heartbeat?.appliedEpoch),
      version: p.heartbeat?.version ?? '',
      http_url: p.heartbeat?.httpUrl ?? '',
      last_seen: new Date(toNumber(p.lastSeenUnixNano) / 1e6).toISOString(),
      last_seen_ns: toNumber(p.lastSeenUnixNano),
    }));
    if (values.json) {
      process.stdout.write(JSON.stringify({ epoch: toNumber(res.epoch), probers: probers.map(({ last_seen_ns: _drop, ...p }) => p) }, null, 2) + '\n');
      return 0;
    }
    const rows = probers.map((p) => [p.id, p.state, p.zone, String(p.assigned_targets), String(p.applied_epoch), p.version, ago(p.last_seen_ns, now), p.http_url]);
    process.stdout.write(renderTable(['PROBER', 'STATE', 'ZONE', 'TARGETS', 'EPOCH', 'VERSION', 'LAST SEEN', 'HTTP'], rows) + `\nepoch ${toNumber(res.epoch)}, ${probers.length} prober(s)\n`);
    return 0;
  },
};
