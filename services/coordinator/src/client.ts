/**
 * A thin typed client of the AdminService (used by the CLI and tests). Insecure
 * channel credentials for now; mTLS comes with the roles work.
 */
import * as grpc from '@grpc/grpc-js';
import { AdminServiceDefinition, probemesh } from '@probemesh/proto';

/** Per-call options. */
export interface AdminCallOptions {
  /** Deadline of the call in ms. @default 10000 */
  timeoutMs?: number;
}

/**
 * AdminService calls as promises. A failed call rejects with the grpc-js
 * `ServiceError` (`code` = gRPC status number, `details` = the server's message,
 * naming the bad field for INVALID_ARGUMENT).
 */
export interface AdminClient {
  addTarget(req: probemesh.v1.IAddTargetRequest, opts?: AdminCallOptions): Promise<probemesh.v1.AddTargetResponse>;
  removeTarget(req: probemesh.v1.IRemoveTargetRequest, opts?: AdminCallOptions): Promise<probemesh.v1.RemoveTargetResponse>;
  listTargets(req?: probemesh.v1.IListTargetsRequest, opts?: AdminCallOptions): Promise<probemesh.v1.ListTargetsResponse>;
  listProbers(req?: probemesh.v1.IListProbersRequest, opts?: AdminCallOptions): Promise<probemesh.v1.ListProbersResponse>;
  drainProber(req: probemesh.v1.IDrainProberRequest, opts?: AdminCallOptions): Promise<probemesh.v1.DrainProberResponse>;
  getPlacement(req: probemesh.v1.IGetPlacementRequest, opts?: AdminCallOptions): Promise<probemesh.v1.GetPlacementResponse>;
  getRing(req?: probemesh.v1.IGetRingRequest, opts?: AdminCallOptions): Promise<probemesh.v1.GetRingResponse>;
  analyzeCanary(req: probemesh.v1.IAnalyzeCanaryRequest, opts?: AdminCallOptions): Promise<probemesh.v1.AnalyzeCanaryResponse>;
  /** Closes the channel. */
  close(): void;
}

const AdminServiceClient = grpc.makeGenericClientConstructor(AdminServiceDefinition, 'probemesh.v1.AdminService');

type RawUnary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** Connects (lazily) to the AdminService at `address` (`host:port`). */
export function createAdminClient(address: string): AdminClient {
  const raw = new AdminServiceClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, RawUnary>;
  const call =
    <Req, Res>(method: string) =>
    (req: Req, opts?: AdminCallOptions): Promise<Res> =>
      new Promise<Res>((resolve, reject) => {
        const fn = raw[method]!;
        fn.call(raw, req ?? {}, new grpc.Metadata(), { deadline: Date.now() + (opts?.timeoutMs ?? 10_000) }, (err, res) => (err ? reject(err) : resolve(res as Res)));
      });
  return {
    addTarget: call('addTarget'),
    removeTarget: call('removeTarget'),
    listTargets: call('listTargets'),
    listProbers: call('listProbers'),
    drainProber: call('drainProber'),
    getPlacement: call('getPlacement'),
    getRing: call('getRing'),
    analyzeCanary: call('analyzeCanary'),
    close: () => raw.close(),
  };
}
