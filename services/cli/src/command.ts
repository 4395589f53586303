/** The shape of a CLI subcommand and shared option parsing. */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { UsageError } from './errors';

/** A subcommand. */
export interface Command {
  /** Name as typed (`targets`). */
  name: string;
  /** One line for `probemesh --help`. */
  summary: string;
  /** Full `--help` text with examples. */
  help: string;
  /** Runs with the arguments after the name; resolves to the exit status. */
  run(args: string[]): Promise<number>;
}

/** Options every admin command accepts. */
export const adminOptions = {
  addr: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** The help lines describing {@link adminOptions}. */
export const ADMIN_OPTIONS_HELP = [
  '  --addr HOST:PORT   coordinator gRPC address (env PROBEMESH_ADDR; default 127.0.0.1:50051)',
  '  --json             print JSON instead of a table',
].join('\n');

/** parseArgs that reports unknown options as a {@link UsageError} naming the command. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: T, allowPositionals = true): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.split('\n')[0]} (see probemesh ${command} --help)`);
  }
}

/** The admin address from --addr, PROBEMESH_ADDR or the default. */
export function adminAddress(flag: string | undefined): string {
  return flag ?? process.env.PROBEMESH_ADDR ?? '127.0.0.1:50051';
}
