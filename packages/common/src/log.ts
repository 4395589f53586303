/** Logging: pino, JSON lines on stderr, one child logger per component. */
import pino from 'pino';
import { obj, str } from './schema';

/** Log settings shared by every service config (`log:`). */
export const logSchema = obj({
  level: str({ default: 'info', oneOf: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], doc: 'Minimum log level.' }),
});

/** A structured logger (pino). */
export type Logger = pino.Logger;

/** Keys whose values are never logged (secrets). */
export const REDACTED_KEYS = ['password', 'bearer_token', 'authorization', 'token', 'key', 'private_key', '*.password', '*.bearer_token', '*.authorization', 'headers.authorization'];

/** Where log lines go: anything with `write(line)`. */
export interface LogDestination {
  write(line: string): void;
}

/**
 * Creates the root logger of a service: JSON on stderr (fd 2) so stdout stays free for
 * CLI output, bound to `service` and `id`. `destination` replaces stderr (tests).
 */
export function createLogger(service: string, id: string, level = 'info', destination?: LogDestination): Logger {
  return pino(
    { level, base: { service, id }, redact: { paths: REDACTED_KEYS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that discards everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
