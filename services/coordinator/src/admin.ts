/**
 * The gRPC AdminService: AddTarget / RemoveTarget / ListTargets / ListProbers /
 * DrainProber / GetPlacement / GetRing (AnalyzeCanary is plugged in by its owner). One
 * function ({@link toGrpcStatus}) maps errors to status codes at this edge; every
 * mutating call leaves an audit log line.
 */
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, Logger, NotFoundError, ProbemeshError, splitHostPort, toULong } from '@probemesh/common';
import { AdminServiceDefinition, AdminServiceHandlers, probemesh } from '@probemesh/proto';
import { AssignmentPublisher } from './assignments';
import { TargetDefaults } from './config';
import { LeaseHolder } from './lease';
import { Membership, ProberRecord } from './membership';
import { placementResponse, ringResponse } from './ring';
import { TargetRegistry } from './targets';
import { removeTargetId, validateAddTarget } from './validate';
import { callerOf, GrpcAuthSettings, GrpcTlsSettings, RoleMap, secureHandlers, serverCredentials, summarize } from './grpc-auth';
import { addStandardServices } from './grpc-extras';
import { getTarget, importTargets, listModules, listTargets, updatedTarget } from './admin-targets';
import { watchResults } from './watch-results';
import { KV, NatsConnection } from 'nats';

/** What the admin handlers read and change. */
export interface AdminDeps {
  targets: TargetRegistry;
  membership: Membership;
  /** The assignment publisher while this coordinator leads (calls reach the leader, see forward.ts). */
  publisher: () => AssignmentPublisher | undefined;
  /** The lease holder as last seen. */
  leader: () => LeaseHolder | undefined;
  /** Hash-ring virtual nodes per unit of capacity (GetRing). */
  vnodesPerCapacity: number;
  /** Defaults for AddTarget fields left unset. */
  defaults: TargetDefaults;
  /** The AnalyzeCanary handler; answered UNIMPLEMENTED when not given. */
  analyzeCanary?: AdminServiceHandlers['analyzeCanary'];
  /** KV pm_probers (module configurations of ListModules). */
  probersKv?: KV;
  /** NATS connection (WatchResults reads PM_RESULTS). */
  nc?: NatsConnection;
  log: Logger;
}

/** A prober's state as ListProbers shows it: `draining` for an alive prober being drained. */
export function proberState(p: ProberRecord, draining: ReadonlySet<string> | undefined): string {
  return p.state === 'alive' && draining?.has(p.id) ? 'draining' : p.state;
}

function proberInfo(p: ProberRecord, deps: AdminDeps): probemesh.v1.IProberInfo {
  const pub = deps.publisher();
  return { heartbeat: p.heartbeat, state: proberState(p, pub?.draining()), assignedTargets: pub?.assignedCounts().get(p.id) ?? 0, lastSeenUnixNano: toULong(p.lastSeenUnixNs) };
}

function requirePublisher(deps: AdminDeps): AssignmentPublisher {
  const pub = deps.publisher();
  if (!pub) throw new UnavailableError('this coordinator is not the leader (no placement here); retry, the call is forwarded to the leader once one is elected');
  return pub;
}

/** The placement state needed for the call is not here (standby without a leader). */
export class UnavailableError extends ProbemeshError {
  constructor(message: string) {
    super('PM_UNAVAILABLE', message);
    this.name = 'UnavailableError';
  }
}

/**
 * Maps an error to a gRPC status: InvalidArgumentError → INVALID_ARGUMENT (details
 * name the field), NotFoundError → NOT_FOUND, anything else → INTERNAL with an error
 * log line (details do not leak internals beyond the message).
 */
export function toGrpcStatus(err: unknown, log: Logger, rpc: string): Partial<grpc.StatusObject> {
  if (err instanceof InvalidArgumentError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof NotFoundError) return { code: grpc.status.NOT_FOUND, details: err.message };
  if (err instanceof UnavailableError) return { code: grpc.status.UNAVAILABLE, details: err.message };
  log.error({ err, rpc }, 'admin call failed');
  const code = err instanceof ProbemeshError ? ` (${err.code})` : '';
  return { code: grpc.status.INTERNAL, details: `internal error${code}: ${(err as Error)?.message ?? String(err)}` };
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function unary<Req, Res>(deps: AdminDeps, rpc: string, mutating: boolean, fn: (req: Req) => Promise<{ res: Res; audit?: Record<string, unknown> }>): Unary<Req, Res> {
  return (call, callback) => {
    const peer = call.getPeer();
    const caller = callerOf(call);
    fn(call.request).then(
      ({ res, audit }) => {
        if (mutating) deps.log.info({ audit: true, rpc, peer, identity: caller?.identity, role: caller?.role, outcome: 'ok', ...audit }, `audit ${rpc}`);
        callback(null, res);
      },
      (err: unknown) => {
        const st = toGrpcStatus(err, deps.log, rpc);
        if (mutating) deps.log.info({ audit: true, rpc, peer, identity: caller?.identity, role: caller?.role, outcome: grpc.status[st.code ?? grpc.status.UNKNOWN], details: st.details, request: summarize(call.request) }, `audit ${rpc}`);
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
    listTargets: unary(deps, 'ListTargets', false, async (req: probemesh.v1.ListTargetsRequest) => ({ res: listTargets(deps.targets, req) })),
    getTarget: unary(deps, 'GetTarget', false, async (req: probemesh.v1.GetTargetRequest) => ({ res: getTarget(deps.targets, req, deps.defaults) })),
    updateTarget: unary(deps, 'UpdateTarget', true, async (req: probemesh.v1.UpdateTargetRequest) => {
      const existing = getTarget(deps.targets, req, deps.defaults);
      const { target } = await deps.targets.put(updatedTarget(existing, req, deps.defaults));
      return { res: target, audit: { target_id: target.id, url: target.url, module: target.module } };
    }),
    importTargets: unary(deps, 'ImportTargets', true, async (req: probemesh.v1.ImportTargetsRequest) => {
      const res = await importTargets(deps.targets, req, deps.defaults);
      return { res, audit: { format: req.format, dry_run: req.dryRun, ...res } };
    }),
    listModules: unary(deps, 'ListModules', false, async () => {
      if (!deps.probersKv) throw new UnavailableError('module listing is not available on this coordinator');
      return { res: await listModules(deps.probersKv, deps.membership.list().map((p) => p.id)) };
    }),
    watchResults: (call) => {
      if (!deps.nc) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'result watching is not available on this coordinator' });
        return;
      }
      const r = call.request;
      watchResults(deps.nc, { targetId: r.targetId, url: r.url, prober: r.prober, failureCode: r.failureCode, onlyFailures: r.onlyFailures }, (res) => call.write(res), deps.log).then(
        (w) => {
          call.on('cancelled', () => w.stop());
          call.on('close', () => w.stop());
          void w.done.then(() => call.end());
        },
        (err: unknown) => call.emit('error', toGrpcStatus(err, deps.log, 'WatchResults')),
      );
    },
    listProbers: unary(deps, 'ListProbers', false, async () => {
      const probers = deps.membership.list().map((p) => proberInfo(p, deps));
      return { res: { probers, epoch: toULong(deps.publisher()?.epoch ?? 0n) } };
    }),
    drainProber: unary(deps, 'DrainProber', true, async (req: probemesh.v1.DrainProberRequest) => {
      if (!req.prober) throw new InvalidArgumentError('prober', 'required');
      const p = deps.membership.get(req.prober);
      if (!p) throw new NotFoundError(`no prober with id ${req.prober} (see probemesh probers)`);
      const movingTargets = requirePublisher(deps).setDraining(req.prober, !req.undrain);
      return { res: { prober: proberInfo(p, deps), movingTargets }, audit: { prober: req.prober, undrain: req.undrain, moving_targets: movingTargets } };
    }),
    getPlacement: unary(deps, 'GetPlacement', false, async (req: probemesh.v1.GetPlacementRequest) => {
      const id = removeTargetId(req, deps.defaults);
      const target = deps.targets.get(id);
      if (!target) throw new NotFoundError(`no target with id ${id}`);
      return { res: placementResponse(target, requirePublisher(deps), deps.membership, deps.vnodesPerCapacity) };
    }),
    getRing: unary(deps, 'GetRing', false, async () => ({
      res: ringResponse(deps.membership, requirePublisher(deps), deps.vnodesPerCapacity, deps.leader()),
    })),
    analyzeCanary:
      deps.analyzeCanary ??
      ((_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'AnalyzeCanary is not available on this coordinator (no canary judge configured in this build)' }, null)),
  };
}

/** A running gRPC server. */
export interface AdminServer {
  /** `host:port` a client can dial (wildcard hosts shown as loopback), with the bound port. */
  address: string;
  /** Stops: graceful for up to `graceMs`, then forced. */
  stop(graceMs?: number): Promise<void>;
}

/** Security of the admin server. */
export interface AdminServerSecurity {
  /** TLS 1.3 (+ client certificates when `client_ca_file` is set); plaintext when absent. */
  tls?: GrpcTlsSettings;
  /** Roles by client certificate identity. */
  auth: GrpcAuthSettings;
  /** Audit log (one line per mutating call and per denial). */
  audit: Logger;
}

/**
 * Serves `handlers` on `listen` (port 0 picks a free port), behind the role checks of
 * `security`, next to grpc.health.v1 and server reflection.
 */
export async function startAdminServer(listen: string, handlers: AdminServiceHandlers, log: Logger, security?: AdminServerSecurity): Promise<AdminServer> {
  const server = new grpc.Server();
  const roles = new RoleMap(security?.auth ?? { admins: [], operators: [], viewers: [], default_role: 'none', insecure_role: 'admin' }, security?.tls !== undefined);
  server.addService(AdminServiceDefinition, secureHandlers(handlers, roles, security?.audit ?? log));
  const standard = addStandardServices(server);
  if (!security?.tls) log.warn({ listen }, 'gRPC AdminService without TLS: every caller has the insecure_role (set grpc.tls to require certificates)');
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, serverCredentials(security?.tls), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const { host } = splitHostPort(listen);
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  const address = `${shownHost}:${port}`;
  log.info({ address, listen }, 'gRPC AdminService listening');
  return {
    address,
    stop: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        standard.setStatus('NOT_SERVING');
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
