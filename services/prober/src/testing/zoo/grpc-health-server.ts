/**
 * Zoo gRPC health server (grpc.health.v1.Health/Check): "" and `zoo.Serving` are
 * SERVING, `zoo.NotServing` is NOT_SERVING, `zoo.Unknown` answers status UNKNOWN, any
 * other service NOT_FOUND (the health protocol's "unknown service"). Plaintext, or TLS
 * with the zoo certificates.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeHealthRequest, encodeHealthResponse, HEALTH_CHECK_PATH } from '../../probes/grpc-health';
import { ZooCerts } from './certs';

/** Services the zoo health server knows, with their status number. */
export const GRPC_ZOO_SERVICES: Readonly<Record<string, number>> = { '': 1, 'zoo.Serving': 1, 'zoo.NotServing': 2, 'zoo.Unknown': 0 };

/** A running zoo gRPC server. */
export interface GrpcZoo {
  /** `127.0.0.1:<port>`. */
  readonly target: string;
  /** Checks received, by service. */
  readonly checks: Map<string, number>;
  /** Metadata of the last call (header → value). */
  readonly lastMetadata: Record<string, string>;
  close(): Promise<void>;
}

/** Starts the zoo health server on 127.0.0.1 (TLS when `certs` are given). */
export async function startGrpcZoo(certs?: ZooCerts): Promise<GrpcZoo> {
  const server = new grpc.Server();
  const checks = new Map<string, number>();
  const lastMetadata: Record<string, string> = {};
  const definition: grpc.ServiceDefinition = {
    Check: {
      path: HEALTH_CHECK_PATH,
      requestStream: false,
      responseStream: false,
      // An object, not the bare string: grpc-js takes a falsy request ('') for a missing one.
      requestDeserialize: (b: Buffer) => ({ service: decodeHealthRequest(b) }),
      requestSerialize: () => Buffer.alloc(0),
      responseSerialize: encodeHealthResponse,
      responseDeserialize: () => 0,
    },
  };
  server.addService(definition, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, cb: grpc.sendUnaryData<number>) => {
      const service = call.request.service;
      checks.set(service, (checks.get(service) ?? 0) + 1);
      for (const k of Object.keys(lastMetadata)) delete lastMetadata[k];
      for (const [k, v] of Object.entries(call.metadata.getMap())) lastMetadata[k] = String(v);
      const status = GRPC_ZOO_SERVICES[service];
      if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` });
      else cb(null, status);
    },
  });
  const creds = certs ? grpc.ServerCredentials.createSsl(null, [{ private_key: certs.key, cert_chain: certs.cert }]) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    target: `127.0.0.1:${port}`,
    checks,
    lastMetadata,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}
