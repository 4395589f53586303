/** `probemesh watch`: a live tail of probe results. */
import { toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { UsageError } from './errors';

function line(r: probemesh.v1.ProbeResult): string {
  const t = new Date(Number(toBigInt(r.startUnixNano) / 1_000_000n)).toISOString();
  const ms = (Number(toBigInt(r.durationNs)) / 1e6).toFixed(3);
  const outcome = r.success ? 'ok' : `FAIL ${r.failureCode}${r.failureMessage ? ` (${r.failureMessage})` : ''}`;
  return `${t} ${r.prober.padEnd(10)} ${r.module.padEnd(12)} ${r.target} ${ms} ms ${outcome}`;
}

/** `probemesh watch`. */
export const watchCommand: Command = {
  name: 'watch',
  summary: 'Stream probe results as they arrive, filtered',
  help: `Usage: probemesh watch [--target URL|ID] [--prober ID] [--failure-code CODE] [--failures] [--count N] [--json]

Streams new probe results from the mesh as they are published (a plain NATS subscription:
nothing is taken away from the aggregators) until Ctrl-C or --count results.

Options:
  --target URL|ID      only this target
  --prober ID          only results of this prober
  --failure-code CODE  only failures with this code (docs/ERRORS.md)
  --failures           only failed probes
  --count N            stop after N results
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh watch --failures
  probemesh watch --target https://api.example.com/health --json --count 10`,
  async run(args) {
    const { values } = parse('watch', args, { ...adminOptions, target: { type: 'string' }, prober: { type: 'string' }, 'failure-code': { type: 'string' }, failures: { type: 'boolean', default: false }, count: { type: 'string' } }, false);
    const count = values.count === undefined ? Infinity : Number(values.count);
    if (!(count > 0)) throw new UsageError(`watch: --count must be a positive integer, got ${JSON.stringify(values.count)}`);
    const target = values.target ?? '';
    const byId = /^[0-9a-f]{32}$/.test(target);
    return withAdmin(adminTarget(values), (c) =>
      new Promise<number>((resolve, reject) => {
        let seen = 0;
        const w = c.watchResults(
          { targetId: byId ? target : '', url: byId ? '' : target, prober: values.prober ?? '', failureCode: values['failure-code'] ?? '', onlyFailures: values.failures },
          (r) => {
            process.stdout.write(values.json ? JSON.stringify(probemesh.v1.ProbeResult.toObject(r, { longs: String })) + '\n' : line(r) + '\n');
            if (++seen >= count) w.cancel();
          },
          (err) => (err ? reject(err) : resolve(0)),
        );
        process.once('SIGINT', () => w.cancel());
      }),
    );
  },
};
