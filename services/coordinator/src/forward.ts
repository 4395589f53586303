/**
 * Admin calls reach the leader: a standby forwards every AdminService call (except
 * AnalyzeCanary, which needs no placement state) to the leader's `grpc_address` from
 * the lease and relays the answer or the error status unchanged. A call that was
 * already forwarded once is never forwarded again (no loops during a change of
 * leader): it is answered FAILED_PRECONDITION naming the leader, as is any call when
 * the leader cannot be reached.
 */
import * as grpc from '@grpc/grpc-js';
import { Logger } from '@probemesh/common';
import { AdminServiceDefinition, AdminServiceHandlers } from '@probemesh/proto';
import { AdminClientTls, adminChannel } from './client';
import { LeaseHolder } from './lease';

/** Metadata key set on forwarded calls (value: the forwarding coordinator's id). */
export const FORWARDED_BY = 'x-probemesh-forwarded-by';

/** What forwarding needs to know. */
export interface ForwardingDeps {
  /** This coordinator's id. */
  id: string;
  /** Whether this coordinator leads now. */
  isLeader(): boolean;
  /** The lease holder as last seen. */
  holder(): LeaseHolder | undefined;
  /** TLS (and client certificate) used to reach the leader; plaintext when absent. */
  clientTls?: AdminClientTls;
  log: Logger;
}

// Served by any coordinator: canary reads Prometheus, module listing reads KV, and a
// result watch reads the stream (and is a server stream, which is not forwarded).
const NOT_FORWARDED = new Set(['analyzeCanary', 'listModules', 'watchResults']);
const AdminServiceClient = grpc.makeGenericClientConstructor(AdminServiceDefinition, 'probemesh.v1.AdminService');
type RawUnary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** Wraps `handlers` so that a standby forwards calls to the leader. Returns the wrapped handlers and a closer for cached channels. */
export function withForwarding(handlers: AdminServiceHandlers, deps: ForwardingDeps): { handlers: AdminServiceHandlers; close(): void } {
  const clients = new Map<string, grpc.Client & Record<string, RawUnary>>();
  const clientFor = (address: string) => {
    let c = clients.get(address);
    if (!c) {
      const channel = adminChannel(deps.clientTls);
      c = new AdminServiceClient(address, channel.credentials, channel.options) as unknown as grpc.Client & Record<string, RawUnary>;
      clients.set(address, c);
    }
    return c;
  };
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(handlers)) {
    if (NOT_FORWARDED.has(name)) {
      out[name] = fn;
      continue;
    }
    const local = fn as grpc.handleUnaryCall<unknown, unknown>;
    out[name] = ((call, callback) => {
      if (deps.isLeader()) return local(call, callback);
      const holder = deps.holder();
      const where = holder && holder.coordinator !== deps.id ? `the leader is ${holder.coordinator} at ${holder.grpcAddress} (term ${holder.term})` : 'no leader is elected yet';
      if (call.metadata.get(FORWARDED_BY).length > 0 || !holder || holder.coordinator === deps.id || !holder.grpcAddress) {
        callback({ code: grpc.status.FAILED_PRECONDITION, details: `coordinator ${deps.id} is not the leader; ${where}` }, null);
        return;
      }
      const md = new grpc.Metadata();
      md.set(FORWARDED_BY, deps.id);
      const deadline = call.getDeadline();
      const client = clientFor(holder.grpcAddress);
      const method = client[name]!;
      method.call(client, call.request, md, { deadline: deadline === Infinity ? Date.now() + 10_000 : deadline }, (err, res) => {
        if (!err) return callback(null, res);
        if (err.code === grpc.status.UNAVAILABLE) {
          deps.log.warn({ rpc: name, leader: holder.coordinator, address: holder.grpcAddress, err: err.details }, 'forwarding to the leader failed');
          return callback({ code: grpc.status.UNAVAILABLE, details: `coordinator ${deps.id} is a standby and cannot reach the leader (${where}): ${err.details}` }, null);
        }
        callback({ code: err.code, details: err.details, metadata: err.metadata }, null);
      });
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return {
    handlers: out as unknown as AdminServiceHandlers,
    close: () => {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
