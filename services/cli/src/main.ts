#!/usr/bin/env node
/**
 * `probemesh`: one CLI for the whole mesh. Each subcommand lives in its own file and
 * exports a {@link Command}; this file only dispatches and turns errors into one line.
 */
import { ProbemeshError, VERSION } from '@probemesh/common';
import { Command } from './command';
import { serviceCommands } from './service';
import { targetsCommand } from './targets';
import { probersCommand } from './probers';
import { drainCommand } from './drain';
import { ringCommand } from './ring';
import { canaryCommand } from './canary';
import { upCommand } from './up';
import { probeCommand } from './probe';
import { modulesCommand } from './modules';
import { watchCommand } from './watch';
import { UsageError } from './errors';

const commands: Command[] = [upCommand, ...serviceCommands, targetsCommand, probersCommand, drainCommand, ringCommand, modulesCommand, watchCommand, probeCommand, canaryCommand];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `probemesh ${VERSION}: a distributed, sharded probe mesh for real-time API monitoring`,
    '',
    'Usage: probemesh <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `probemesh <command> --help` for the options and examples of a command.',
    'Admin commands reach the coordinator at --addr (env PROBEMESH_ADDR, default 127.0.0.1:50051).',
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`probemesh ${VERSION}\n`);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`unknown command "${name}" (commands: ${commands.map((c) => c.name).join(', ')}; see probemesh --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.help + '\n');
    return 0;
  }
  return cmd.run(rest);
}

/** Runs the CLI and sets the exit status; errors become one line on stderr. */
export function main(argv: string[]): Promise<void> {
  return run(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const code = err instanceof ProbemeshError ? err.code : 'PM_ERROR';
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`probemesh: ${message} [${code}]\n`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
}

if (require.main === module) void main(process.argv.slice(2));
