/**
 * A thin typed client of the AdminService (used by the CLI, tests and the forwarding
 * standby): plaintext, or TLS with an optional client certificate (mTLS).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ErrorCodes, ProbemeshError } from '@probemesh/common';
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
  getTarget(req: probemesh.v1.IGetTargetRequest, opts?: AdminCallOptions): Promise<probemesh.v1.Target>;
  updateTarget(req: probemesh.v1.IUpdateTargetRequest, opts?: AdminCallOptions): Promise<probemesh.v1.Target>;
  importTargets(req: probemesh.v1.IImportTargetsRequest, opts?: AdminCallOptions): Promise<probemesh.v1.ImportTargetsResponse>;
  listModules(req?: probemesh.v1.IListModulesRequest, opts?: AdminCallOptions): Promise<probemesh.v1.ListModulesResponse>;
  /** Streams results until `cancel()`; `onEnd` gets the error that ended it (if any). */
  watchResults(req: probemesh.v1.IWatchResultsRequest, onResult: (r: probemesh.v1.ProbeResult) => void, onEnd: (err?: grpc.ServiceError) => void): { cancel(): void };
  /** Closes the channel. */
  close(): void;
}

const AdminServiceClient = grpc.makeGenericClientConstructor(AdminServiceDefinition, 'probemesh.v1.AdminService');

/** TLS of an admin client. */
export interface AdminClientTls {
  /** CA of the coordinator's certificate (PEM file). */
  ca_file: string;
  /** Client certificate (PEM file), for mTLS. */
  cert_file?: string;
  /** Client key (PEM file), for mTLS. */
  key_file?: string;
  /** Name to check the server certificate against instead of the dialled host. */
  server_name?: string;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ProbemeshError(ErrorCodes.CONFIG_INVALID, `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Channel credentials and options for `tls` (plaintext when absent). */
export function adminChannel(tls: AdminClientTls | undefined): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) throw new ProbemeshError(ErrorCodes.CONFIG_INVALID, 'a client certificate needs both cert_file and key_file');
  const credentials = grpc.credentials.createSsl(readPem(tls.ca_file, 'ca_file'), tls.key_file ? readPem(tls.key_file, 'key_file') : null, tls.cert_file ? readPem(tls.cert_file, 'cert_file') : null);
  return { credentials, options: tls.server_name ? { 'grpc.ssl_target_name_override': tls.server_name, 'grpc.default_authority': tls.server_name } : {} };
}

type RawUnary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** Connects (lazily) to the AdminService at `address` (`host:port`), with TLS when given. */
export function createAdminClient(address: string, tls?: AdminClientTls): AdminClient {
  const channel = adminChannel(tls);
  const raw = new AdminServiceClient(address, channel.credentials, channel.options) as unknown as grpc.Client & Record<string, RawUnary>;
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
    getTarget: call('getTarget'),
    updateTarget: call('updateTarget'),
    importTargets: call('importTargets'),
    listModules: call('listModules'),
    watchResults(req, onResult, onEnd) {
      const stream = (raw as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<probemesh.v1.ProbeResult>>).watchResults!.call(raw, req);
      let ended = false;
      const end = (err?: grpc.ServiceError) => {
        if (!ended) {
          ended = true;
          onEnd(err);
        }
      };
      stream.on('data', onResult);
      stream.on('error', (err: grpc.ServiceError) => end(err.code === grpc.status.CANCELLED ? undefined : err));
      stream.on('end', () => end());
      return { cancel: () => stream.cancel() };
    },
    close: () => raw.close(),
  };
}
