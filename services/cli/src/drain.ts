/** `probemesh drain PROBER [--undrain]`. */
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { UsageError } from './errors';

/** `probemesh drain`. */
export const drainCommand: Command = {
  name: 'drain',
  summary: 'Drain a prober (its targets move to others first, it stops last) or undrain it',
  help: `Usage: probemesh drain PROBER [--undrain] [--json]

Drains PROBER: its targets are assigned to their new owners at once while PROBER keeps
probing them; each target leaves PROBER only after its new owners have applied their
assignment and probed it, so no target goes unprobed. A drained prober stays out of
placement (safe to stop) until it is undrained. --undrain gives it its share back.

Options:
  --undrain          take the prober back into placement
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh drain edge-fra-2
  probemesh probers            # STATE shows "draining", TARGETS falls to 0
  probemesh drain edge-fra-2 --undrain`,
  async run(args) {
    const { values, positionals } = parse('drain', args, { ...adminOptions, undrain: { type: 'boolean', default: false } });
    const prober = positionals[0];
    if (!prober || positionals.length > 1) throw new UsageError('drain: expected exactly one PROBER id (see probemesh drain --help)');
    const res = await withAdmin(adminTarget(values), (c) => c.drainProber({ prober, undrain: values.undrain }));
    if (values.json) {
      process.stdout.write(JSON.stringify({ prober, undrain: values.undrain, state: res.prober?.state ?? '', moving_targets: res.movingTargets }, null, 2) + '\n');
      return 0;
    }
    const verb = values.undrain ? 'undrained' : 'draining';
    const how = values.undrain ? 'move back to it' : 'move to other probers before it stops probing them';
    process.stdout.write(`${prober}: ${verb}; ${res.movingTargets} target(s) ${how} (state now ${res.prober?.state ?? 'unknown'})\n`);
    return 0;
  },
};
