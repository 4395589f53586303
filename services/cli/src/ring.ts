/** `probemesh ring [--target URL [--module M] | --id ID]`. */
import { toNumber } from '@probemesh/common';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { renderTable } from './table';

/** `probemesh ring`. */
export const ringCommand: Command = {
  name: 'ring',
  summary: 'Show the hash ring (nodes, weights, vnodes, load) or the owners of one target and why',
  help: `Usage: probemesh ring [--target URL [--module MODULE] | --id TARGET_ID] [--json]

Without --target: the leader's hash ring — every prober with its zone, capacity,
virtual nodes on the ring (0 when it is not placed: dead, leaving, draining), assigned
targets and state, plus the placement epoch, leader and term.
With --target (or --id): the owners of that target, primary first, and why each owns
it (ring position of the target's hash, zone rule, capacity), plus draining probers
still probing it during a hand-off.

Options:
  --target URL       target URL (with --module, default http_2xx)
  --module MODULE    module of --target
  --id ID            target id instead of --target
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh ring
  probemesh ring --target https://api.example.com/health
  probemesh ring --json | jq '.nodes[] | {prober, targets}'`,
  async run(args) {
    const { values } = parse('ring', args, { ...adminOptions, target: { type: 'string' }, module: { type: 'string' }, id: { type: 'string' } }, false);
    const addr = adminTarget(values);
    if (values.target || values.id) {
      const res = await withAdmin(addr, (c) => c.getPlacement({ id: values.id ?? '', url: values.target ?? '', module: values.module ?? '' }));
      const owners = (res.owners ?? []).map((o) => ({ prober: o.prober ?? '', zone: o.zone ?? '', state: o.state ?? '', reason: o.reason ?? '' }));
      if (values.json) {
        process.stdout.write(JSON.stringify({ target: { id: res.target?.id, url: res.target?.url, module: res.target?.module, replication: res.target?.replication }, epoch: toNumber(res.epoch), owners }, null, 2) + '\n');
        return 0;
      }
      process.stdout.write(`${res.target?.url} (${res.target?.module}, id ${res.target?.id}, replication ${res.target?.replication}), epoch ${toNumber(res.epoch)}\n`);
      process.stdout.write(renderTable(['PROBER', 'ZONE', 'STATE', 'WHY'], owners.map((o) => [o.prober || '-', o.zone, o.state, o.reason])) + '\n');
      return 0;
    }
    const res = await withAdmin(addr, (c) => c.getRing({}));
    const nodes = (res.nodes ?? []).map((n) => ({ prober: n.prober ?? '', zone: n.zone ?? '', capacity: n.capacity ?? 0, vnodes: n.vnodes ?? 0, targets: n.targets ?? 0, state: n.state ?? '' }));
    if (values.json) {
      process.stdout.write(JSON.stringify({ epoch: toNumber(res.epoch), leader: res.leader, term: toNumber(res.term), nodes }, null, 2) + '\n');
      return 0;
    }
    const total = nodes.reduce((s, n) => s + n.targets, 0);
    const rows = nodes.map((n) => [n.prober, n.zone, n.state, String(n.capacity), String(n.vnodes), String(n.targets), total ? `${((100 * n.targets) / total).toFixed(1)}%` : '-']);
    process.stdout.write(renderTable(['PROBER', 'ZONE', 'STATE', 'CAPACITY', 'VNODES', 'TARGETS', 'SHARE'], rows) + `\nepoch ${toNumber(res.epoch)}, leader ${res.leader || '-'} (term ${toNumber(res.term)}), ${nodes.length} prober(s)\n`);
    return 0;
  },
};
