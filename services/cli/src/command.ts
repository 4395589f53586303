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
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'server-name': { type: 'string' },
} as const;

/** The help lines describing {@link adminOptions}. */
export const ADMIN_OPTIONS_HELP = [
  '  --addr HOST:PORT   coordinator gRPC address (env PROBEMESH_ADDR; default 127.0.0.1:50051)',
  '  --ca FILE          CA of the coordinator certificate: use TLS (env PROBEMESH_CA_FILE)',
  '  --cert FILE        client certificate for mTLS (env PROBEMESH_CERT_FILE)',
  '  --key FILE         client key for mTLS (env PROBEMESH_KEY_FILE)',
  '  --server-name N    name to check the coordinator certificate against (env PROBEMESH_SERVER_NAME)',
  '  --json             print JSON instead of a table',
].join('\n');

/** Where and how to reach the AdminService. */
export interface AdminTarget {
  /** host:port. */
  address: string;
  /** TLS settings; plaintext when absent. */
  tls?: { ca_file: string; cert_file?: string; key_file?: string; server_name?: string };
}

/** The admin address and TLS from the flags, else PROBEMESH_* env, else defaults. */
export function adminTarget(values: { addr?: string; ca?: string; cert?: string; key?: string; 'server-name'?: string }): AdminTarget {
  const env = process.env;
  const ca = values.ca ?? env.PROBEMESH_CA_FILE;
  const cert = values.cert ?? env.PROBEMESH_CERT_FILE;
  const key = values.key ?? env.PROBEMESH_KEY_FILE;
  const serverName = values['server-name'] ?? env.PROBEMESH_SERVER_NAME;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together (a client certificate needs its key)');
  if (cert && !ca) throw new UsageError('--cert needs --ca (the CA of the coordinator certificate)');
  return { address: adminAddress(values.addr), tls: ca ? { ca_file: ca, cert_file: cert, key_file: key, server_name: serverName } : undefined };
}

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
