/** `probemesh modules`: the probe modules the probers have loaded. */
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { renderTable } from './table';

/** `probemesh modules`. */
export const modulesCommand: Command = {
  name: 'modules',
  summary: 'List the probe modules the probers have loaded, with their config',
  help: `Usage: probemesh modules [--json]

Lists every probe module (blackbox_exporter modules: format) the probers have loaded,
which probers have it, and (with --json) its configuration as the probers parsed it.

Options:
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh modules
  probemesh modules --json | jq '.[] | select(.name == "http_2xx").config'`,
  async run(args) {
    const { values } = parse('modules', args, adminOptions, false);
    const res = await withAdmin(adminTarget(values), (c) => c.listModules({}));
    const modules = (res.modules ?? []).map((m) => ({ name: m.name ?? '', prober: m.prober ?? '', probers: m.probers ?? [], config: JSON.parse(m.configJson || '{}') as unknown }));
    if (values.json) process.stdout.write(JSON.stringify(modules, null, 2) + '\n');
    else process.stdout.write(renderTable(['MODULE', 'PROBER', 'LOADED ON'], modules.map((m) => [m.name, m.prober || '-', m.probers.join(',')])) + `\n${modules.length} module(s)\n`);
    return 0;
  },
};
