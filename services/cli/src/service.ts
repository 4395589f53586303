/**
 * `probemesh coordinator|prober|aggregator`: run one service in the foreground (what
 * systemd units and `probemesh up` start). Config from --config (env PROBEMESH_CONFIG)
 * plus PROBEMESH_* overrides; SIGTERM/SIGINT stop it cleanly.
 */
import { createLogger, loadConfig, Logger, Schema } from '@probemesh/common';
import { aggregatorConfigSchema, startAggregator } from '@probemesh/aggregator';
import { coordinatorConfigSchema, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, startProber } from '@probemesh/prober';
import { Command, parse } from './command';

interface Running {
  stop(): Promise<void>;
}

interface ServiceSpec<C> {
  name: string;
  summary: string;
  schema: Schema<C>;
  start(config: C, log: Logger): Promise<Running & { describe: string }>;
  example: string;
}

function serviceCommand<C extends { id: string; log: { level: string } }>(spec: ServiceSpec<C>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: [
      `Usage: probemesh ${spec.name} [--config FILE]`,
      '',
      spec.summary + '. Runs in the foreground until SIGTERM or Ctrl-C.',
      '',
      'Options:',
      '  --config FILE        YAML config (env PROBEMESH_CONFIG); every key can also be set',
      '                       with PROBEMESH_<KEY_PATH>, e.g. PROBEMESH_NATS_SERVERS=nats://h:4222',
      '  --exit-with-parent   exit when the parent process goes away (used by probemesh up)',
      '',
      'Keys and defaults: docs/CONFIG.md.',
      '',
      'Example:',
      `  ${spec.example}`,
    ].join('\n'),
    async run(args) {
      const { values } = parse(spec.name, args, { config: { type: 'string' }, 'exit-with-parent': { type: 'boolean', default: false } }, false);
      const file = values.config ?? process.env.PROBEMESH_CONFIG;
      const config = loadConfig(spec.schema, { file });
      const log = createLogger(spec.name, config.id, config.log.level);
      const running = await spec.start(config, log);
      log.info({ config: file ?? '(defaults)' }, `${spec.name} started: ${running.describe}`);
      return new Promise<number>((done) => {
        // Once the orderly stop is over, exit even if a library still holds a handle
        // (e.g. a NATS client retrying a server that is gone).
        const resolve = (code: number) => {
          done(code);
          setTimeout(() => process.exit(code), 200).unref();
        };
        let stopping = false;
        const stop = (why: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ why }, `${spec.name} stopping`);
          const force = setTimeout(() => {
            log.error(`${spec.name} did not stop within 15s; exiting`);
            resolve(1);
          }, 15_000);
          force.unref();
          running.stop().then(
            () => {
              clearTimeout(force);
              log.flush();
              resolve(0);
            },
            (err: unknown) => {
              log.error({ err }, `${spec.name} stop failed`);
              resolve(1);
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        if (values['exit-with-parent']) {
          const parent = process.ppid;
          const t = setInterval(() => {
            if (process.ppid !== parent) stop('parent exited');
          }, 500);
          t.unref();
        }
      });
    },
  };
}

/** The three service subcommands. */
export const serviceCommands: Command[] = [
  serviceCommand({
    name: 'coordinator',
    summary: 'Run a coordinator (targets, membership, placement, gRPC admin API)',
    schema: coordinatorConfigSchema,
    example: 'probemesh coordinator --config /etc/probemesh/coordinator.yml',
    async start(config, log) {
      const c = await startCoordinator(config, { log });
      return { stop: () => c.stop(), describe: `gRPC ${c.grpcAddress}, metrics ${c.httpUrl}/metrics` };
    },
  }),
  serviceCommand({
    name: 'prober',
    summary: 'Run a prober (probes its assigned targets, publishes results)',
    schema: proberConfigSchema,
    example: 'PROBEMESH_ZONE=eu-west-1a probemesh prober --config /etc/probemesh/prober.yml',
    async start(config, log) {
      const p = await startProber(config, { log });
      return { stop: () => p.stop(), describe: `metrics ${p.httpUrl}/metrics` };
    },
  }),
  serviceCommand({
    name: 'aggregator',
    summary: 'Run an aggregator (results from JetStream to Prometheus remote_write)',
    schema: aggregatorConfigSchema,
    example: 'probemesh aggregator --config /etc/probemesh/aggregator.yml',
    async start(config, log) {
      const a = await startAggregator(config, { log });
      return { stop: () => a.stop(), describe: `metrics ${a.httpUrl}/metrics` };
    },
  }),
];
