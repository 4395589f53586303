/**
 * The gRPC AdminService: AddTarget / RemoveTarget / ListTargets / ListProbers. One
 * function ({@link toGrpcStatus}) maps errors to status codes at this edge; every
 * mutating call leaves an audit log line.
 */
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, Logger, NotFoundError, ProbemeshError, splitHostPort, toULong } from '@probemesh/common';
import { AdminServiceDefinition, AdminServiceHandlers, probemesh } from '@probemesh/proto';
import { TargetDefaults } from './config';
import { Membership } from './membership';
import { TargetRegistry } from './targets';
import { removeTargetId, validateAddTarget } from './validate';

/** What the admin handlers read and change. */
export interface AdminDeps {
  targets: TargetRegistry;
  membership: Membership;
  /** Current epoch and per-prober assigned target counts. */
  assignments: { readonly epoch: bigint; assignedCounts(): ReadonlyMap<string, number> };
  /** Defaults for AddTarget fields left unset. */
  defaults: TargetDefaults;
  log: Logger;
}

/**
 * Maps an error to a gRPC status: InvalidArgumentError → INVALID_ARGUMENT (details
 * name the field), NotFoundError → NOT_FOUND, anything else → INTERNAL with an error
 * log line (details do not leak internals beyond the message).
 */
export function toGrpcStatus(err: unknown, log: Logger, rpc: string): Partial<grpc.StatusObject> {
  if (err instanceof InvalidArgumentError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof NotFoundError) return { code: grpc.status.NOT_FOUND, details: err.message };
  log.error({ err, rpc }, 'admin call failed');
  const code = err instanceof ProbemeshError ? ` (${err.code})` : '';
  return { code: grpc.status.INTERNAL, details: `internal error${code}: ${(err as Error)?.message ?? String(err)}` };
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function unary<Req, Res>(deps: AdminDeps, rpc: string, mutating: boolean, fn: (req: Req) => Promise<{ res: Res; audit?: Record<string, unknown> }>): Unary<Req, Res> {
  return (call, callback) => {
    const peer = call.getPeer();
    fn(call.request).then(
      ({ res, audit }) => {
        if (mutating) deps.log.info({ audit: true, rpc, peer, outcome: 'ok', ...audit }, `audit ${rpc}`);
        callback(null, res);
      },
      (err: unknown) => {
        const st = toGrpcStatus(err, deps.log, rpc);
        if (mutating) deps.log.info({ audit: true, rpc, peer, outcome: grpc.status[st.code ?? grpc.status.UNKNOWN], details: st.details }, `audit ${rpc}`);
        callback(st, null);
      },
    );
  };
}

/** The AdminService handlers over `deps`. */
export function createAdminHandlers(deps: AdminDeps): AdminServiceHandlers {
  return {
    addTarget: unary(deps, 'AddTarget', true, async (req: probemesh.v1.AddTargetRequest) => {
      const valid = validateAddTarget(req, deps.defaults);
      const { target, replaced } = await deps.targets.put(valid);
      return { res: { target, replaced }, audit: { target_id: target.id, url: target.url, module: target.module, replaced } };
    }),
    removeTarget: unary(deps, 'RemoveTarget', true, async (req: probemesh.v1.RemoveTargetRequest) => {
      const id = removeTargetId(req, deps.defaults);
      const target = await deps.targets.remove(id);
      return { res: { target }, audit: { target_id: id, url: target.url, module: target.module } };
    }),
    listTargets: unary(deps, 'ListTargets', false, async (req: probemesh.v1.ListTargetsRequest) => ({ res: { targets: deps.targets.list(req.module || undefined) } })),
    listProbers: unary(deps, 'ListProbers', false, async () => {
      const counts = deps.assignments.assignedCounts();
      const probers: probemesh.v1.IProberInfo[] = deps.membership.list().map((p) => ({
        heartbeat: p.heartbeat,
        state: p.state,
        assignedTargets: counts.get(p.id) ?? 0,
        lastSeenUnixNano: toULong(p.lastSeenUnixNs),
      }));
      return { res: { probers, epoch: toULong(deps.assignments.epoch) } };
    }),
  };
}

/** A running gRPC server. */
export interface AdminServer {
  /** `host:port` a client can dial (wildcard hosts shown as loopback), with the bound port. */
  address: string;
  /** Stops: graceful for up to `graceMs`, then forced. */
  stop(graceMs?: number): Promise<void>;
}

/** Serves `handlers` on `listen` (port 0 picks a free port), without TLS for now. */
export async function startAdminServer(listen: string, handlers: AdminServiceHandlers, log: Logger): Promise<AdminServer> {
  const server = new grpc.Server();
  server.addService(AdminServiceDefinition, handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const { host } = splitHostPort(listen);
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  const address = `${shownHost}:${port}`;
  log.info({ address, listen }, 'gRPC AdminService listening');
  return {
    address,
    stop: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
