/**
 * Typed errors with stable codes. Every error probemesh raises on purpose is a
 * {@link ProbemeshError}; its `code` is part of the contract (documented in
 * docs/ERRORS.md and checked unique by a test).
 */

/** Stable error codes of the shared package and the services' edges. */
export const ErrorCodes = {
  /** A configuration file or environment override is invalid. */
  CONFIG_INVALID: 'PM_CONFIG_INVALID',
  /** A configuration file could not be read or parsed as YAML. */
  CONFIG_UNREADABLE: 'PM_CONFIG_UNREADABLE',
  /** An API argument is invalid (mapped to gRPC INVALID_ARGUMENT). */
  INVALID_ARGUMENT: 'PM_INVALID_ARGUMENT',
  /** A requested object does not exist (mapped to gRPC NOT_FOUND). */
  NOT_FOUND: 'PM_NOT_FOUND',
  /** The NATS connection or a JetStream resource is unavailable. */
  NATS_UNAVAILABLE: 'PM_NATS_UNAVAILABLE',
  /** An external program (nats-server, prometheus, bpftrace) is missing or failed. */
  DEPENDENCY_MISSING: 'PM_DEPENDENCY_MISSING',
  /** The remote_write endpoint rejected a request. */
  REMOTE_WRITE: 'PM_REMOTE_WRITE',
} as const;

/** One of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class of probemesh errors: a stable `code`, a message and an optional cause. */
export class ProbemeshError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProbemeshError';
    this.code = code;
  }
}

/** One problem found in a configuration, at a dotted key path. */
export interface ConfigIssue {
  /** Dotted path of the offending key, e.g. `remote_write[0].url`. */
  path: string;
  /** What is wrong. */
  message: string;
  /** The environment variable the value came from, when it came from one. */
  env?: string;
}

/** A configuration failed validation; `issues` lists every problem found. */
export class ConfigError extends ProbemeshError {
  /** Every problem found, in document order. */
  readonly issues: readonly ConfigIssue[];
  /** Where the configuration came from (file path or a description). */
  readonly source: string;
  constructor(source: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `${i.path || '(root)'}: ${i.message}${i.env ? ` (from ${i.env})` : ''}`);
    super(ErrorCodes.CONFIG_INVALID, `invalid config ${source}: ${lines.join('; ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
    this.source = source;
  }
}

/** An API argument is invalid; `field` names it (e.g. `labels.foo`). */
export class InvalidArgumentError extends ProbemeshError {
  /** The offending field's path. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, `${field}: ${message}`);
    this.name = 'InvalidArgumentError';
    this.field = field;
  }
}

/** A requested object does not exist. */
export class NotFoundError extends ProbemeshError {
  constructor(message: string) {
    super(ErrorCodes.NOT_FOUND, message);
    this.name = 'NotFoundError';
  }
}

/** Returns a one-line description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
