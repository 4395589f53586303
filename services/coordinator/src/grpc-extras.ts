/**
 * The standard services next to the AdminService, so stock tools work against the
 * coordinator: `grpc.health.v1.Health` (grpc-health-probe, load balancers) and server
 * reflection v1 / v1alpha (grpcurl `list` / `describe`), built from the same .proto files
 * as the AdminService through @grpc/proto-loader.
 */
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { PROTO_FILES, PROTO_ROOT } from '@probemesh/proto';

/** Fully-qualified name of the AdminService, as health checks name it. */
export const ADMIN_SERVICE_NAME = 'probemesh.v1.AdminService';

/** Health states a coordinator reports. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** Adds health and reflection to `server`; returns a setter for the health status. */
export function addStandardServices(server: grpc.Server): { setStatus(status: ServingStatus): void } {
  // The health proto grpc-health-check ships, so reflection lists (and describes) it too.
  const healthProto = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
  const definitions = loadSync([...PROTO_FILES.filter((f) => f.startsWith('probemesh/')), healthProto], { includeDirs: [PROTO_ROOT], keepCase: false, longs: String, enums: String, defaults: true });
  new ReflectionService(definitions).addToServer(server);
  const health = new HealthImplementation({ '': 'SERVING', [ADMIN_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  return {
    setStatus(status) {
      health.setStatus('', status);
      health.setStatus(ADMIN_SERVICE_NAME, status);
    },
  };
}
