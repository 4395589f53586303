/**
 * AdminService security: TLS 1.3 server credentials with optional client certificates
 * (mTLS), a role per caller derived from its certificate, authorization per method, and
 * one audit log line per mutating call. Wraps a handler table, so the handlers
 * themselves know nothing about it.
 *
 * Roles: viewer (read) < operator (targets, drain) < admin (everything, including canary
 * thresholds). Without TLS every caller is `insecure_role` (default admin: a local,
 * loopback-only setup) and the coordinator logs a warning at start.
 */
import { readFileSync } from 'node:fs';
import { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { SecureServerOptions } from 'node:http2';
import { SecureContextOptions } from 'node:tls';
import { ErrorCodes, Infer, list, Logger, obj, optional, ProbemeshError, str } from '@probemesh/common';

/** Roles, weakest first. */
export const ROLES = ['none', 'viewer', 'operator', 'admin'] as const;
/** A role. */
export type Role = (typeof ROLES)[number];

/** `grpc.tls` and `grpc.auth` settings. */
export const grpcTlsSchema = obj({
  cert_file: str({ nonEmpty: true, doc: 'Server certificate (PEM).' }),
  key_file: str({ nonEmpty: true, doc: 'Server key (PEM), never logged.' }),
  client_ca_file: optional(str({ doc: 'CA of client certificates; when set, clients must present one (mTLS).' })),
});

/** Who has which role, by client certificate identity (CN, DNS or URI SAN). */
export const grpcAuthSchema = obj({
  admins: list(str(), { default: [], doc: 'Client certificate identities with the admin role.' }),
  operators: list(str(), { default: [], doc: 'Client certificate identities with the operator role.' }),
  viewers: list(str(), { default: [], doc: 'Client certificate identities with the viewer role.' }),
  default_role: str({ default: 'none', oneOf: ROLES, doc: 'Role of a verified client certificate listed nowhere.' }),
  insecure_role: str({ default: 'admin', oneOf: ROLES, doc: 'Role of every caller when the server runs without TLS.' }),
});

/** Parsed settings. */
export type GrpcTlsSettings = Infer<typeof grpcTlsSchema>;
/** Parsed settings. */
export type GrpcAuthSettings = Infer<typeof grpcAuthSchema>;

/** Minimal role per AdminService method (camelCase names as in the handler table). */
export const METHOD_ROLES: Readonly<Record<string, Role>> = {
  listTargets: 'viewer',
  getTarget: 'viewer',
  listProbers: 'viewer',
  listModules: 'viewer',
  getPlacement: 'viewer',
  getRing: 'viewer',
  watchResults: 'viewer',
  addTarget: 'operator',
  updateTarget: 'operator',
  removeTarget: 'operator',
  importTargets: 'operator',
  drainProber: 'operator',
  analyzeCanary: 'viewer',
};

/** Methods that change state: each call gets an audit line. */
export const MUTATING = new Set(['addTarget', 'updateTarget', 'removeTarget', 'importTargets', 'drainProber']);

/** A caller lacks the role for a method (gRPC PERMISSION_DENIED). */
export class PermissionDeniedError extends ProbemeshError {
  constructor(message: string) {
    super('PM_PERMISSION_DENIED', message);
    this.name = 'PermissionDeniedError';
  }
}

/** The role a method needs for this request (canary thresholds in the request need admin). */
export function requiredRole(method: string, request: unknown): Role {
  if (method === 'analyzeCanary') {
    const cfg = (request as { configJson?: string } | undefined)?.configJson ?? '';
    if (cfg.trim() !== '') return 'admin';
  }
  return METHOD_ROLES[method] ?? 'admin';
}

function atLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** The identities a client certificate carries: CN, then DNS and URI SANs. */
export function certIdentities(cert: PeerCertificate | undefined): string[] {
  if (!cert || !cert.subject) return [];
  const out: string[] = [];
  const cn = cert.subject.CN;
  if (typeof cn === 'string') out.push(cn);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|URI):(.+)$/.exec(part);
    if (m) out.push(m[2]!.trim());
  }
  return out;
}

/** Maps a caller to its role. */
export class RoleMap {
  constructor(private readonly auth: GrpcAuthSettings, private readonly secure: boolean) {}

  /** The caller's identity (first certificate identity, or "insecure") and role. */
  of(cert: PeerCertificate | undefined): { identity: string; role: Role } {
    if (!this.secure) return { identity: 'insecure', role: this.auth.insecure_role as Role };
    const ids = certIdentities(cert);
    const lists: [Role, readonly string[]][] = [['admin', this.auth.admins], ['operator', this.auth.operators], ['viewer', this.auth.viewers]];
    for (const [role, names] of lists) {
      const hit = ids.find((id) => names.includes(id));
      if (hit) return { identity: hit, role };
    }
    return { identity: ids[0] ?? 'anonymous', role: this.auth.default_role as Role };
  }
}

/** grpc-js server credentials that accept TLS 1.3 only, optionally requiring client certs. */
class Tls13ServerCredentials extends grpc.ServerCredentials {
  constructor(serverOptions: SecureServerOptions, contextOptions: SecureContextOptions) {
    super(serverOptions, contextOptions);
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function readPem(file: string, key: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ProbemeshError(ErrorCodes.CONFIG_INVALID, `grpc.tls.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Server credentials from `grpc.tls` (insecure when absent). */
export function serverCredentials(tls: GrpcTlsSettings | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const mtls = tls.client_ca_file !== undefined;
  return new Tls13ServerCredentials(
    { requestCert: mtls, rejectUnauthorized: mtls, minVersion: 'TLSv1.3' },
    { ca: mtls ? readPem(tls.client_ca_file!, 'client_ca_file') : undefined, cert: readPem(tls.cert_file, 'cert_file'), key: readPem(tls.key_file, 'key_file'), minVersion: 'TLSv1.3' },
  );
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** Who made a call, as established by {@link secureHandlers}. */
export interface Caller {
  /** Certificate identity, or "insecure" without TLS. */
  identity: string;
  /** Its role. */
  role: Role;
}

const callers = new WeakMap<object, Caller>();

/** The caller of `call` (for audit lines), when the call passed {@link secureHandlers}. */
export function callerOf(call: object): Caller | undefined {
  return callers.get(call);
}

/** A loggable summary of a request: secrets redacted, long strings cut. */
export function summarize(request: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((request ?? {}) as Record<string, unknown>)) {
    if (/password|token|secret|key/i.test(k)) out[k] = '[redacted]';
    else if (typeof v === 'string' && v.length > 200) out[k] = `${v.slice(0, 200)}…`;
    else out[k] = v;
  }
  return out;
}

/**
 * Wraps every handler: identify the caller, check its role (PERMISSION_DENIED naming
 * the role needed, with an audit line), remember the caller for the handler's own
 * audit line ({@link callerOf}), then run the handler.
 */
export function secureHandlers<H extends grpc.UntypedServiceImplementation>(handlers: H, roles: RoleMap, audit: Logger): H {
  const out: Record<string, grpc.UntypedHandleCall> = {};
  for (const [method, handler] of Object.entries(handlers)) {
    out[method] = ((call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => {
      const { identity, role } = roles.of(call.getAuthContext().sslPeerCertificate);
      const needed = requiredRole(method, call.request);
      if (!atLeast(role, needed)) {
        audit.warn({ audit: true, method, identity, role, needed, allowed: false }, `denied ${method} to ${identity}`);
        const err = { code: grpc.status.PERMISSION_DENIED, details: `${method} needs the ${needed} role; ${identity} has ${role}` };
        if (callback) callback(err);
        else (call as grpc.ServerWritableStream<unknown, unknown>).emit('error', err);
        return;
      }
      callers.set(call, { identity, role });
      (handler as (c: AnyCall, cb?: grpc.sendUnaryData<unknown>) => void)(call, callback);
    }) as grpc.UntypedHandleCall;
  }
  return out as H;
}
