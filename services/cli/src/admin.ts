/** Reaching the coordinator's AdminService from the CLI, with one-line errors. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ProbemeshError } from '@probemesh/common';
import { createAdminClient } from '@probemesh/coordinator';
import { AdminTarget } from './command';

/** The typed admin client the CLI uses. */
export type AdminClient = ReturnType<typeof createAdminClient>;

/** An admin call failed; `grpcCode` is the gRPC status name (e.g. INVALID_ARGUMENT). */
export class AdminCallError extends ProbemeshError {
  constructor(readonly grpcCode: string, message: string) {
    super(`PM_GRPC_${grpcCode}`, message);
    this.name = 'AdminCallError';
  }
}

/** Opens a client, runs `fn`, closes it, and turns gRPC errors into one clear line. */
export async function withAdmin<T>(target: string | AdminTarget, fn: (c: AdminClient) => Promise<T>): Promise<T> {
  const { address, tls } = typeof target === 'string' ? { address: target, tls: undefined } : target;
  const client = createAdminClient(address, tls);
  try {
    return await fn(client);
  } catch (err) {
    const e = err as { code?: number; details?: string };
    if (typeof e.code === 'number') {
      const name = GrpcStatus[e.code] ?? String(e.code);
      if (e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.DEADLINE_EXCEEDED) {
        throw new AdminCallError(name, `cannot reach the coordinator at ${address} (${e.details ?? name}); is it running? set --addr or PROBEMESH_ADDR`);
      }
      throw new AdminCallError(name, e.details ?? name);
    }
    throw err;
  } finally {
    client.close();
  }
}
