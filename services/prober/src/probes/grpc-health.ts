/**
 * The gRPC health protocol (grpc/health/v1/health.proto) — two one-field messages, so
 * encoded by hand with protobufjs' Writer/Reader instead of a .proto file and a loader:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }
 */
import { Reader, Writer } from 'protobufjs/minimal';

/** `grpc.health.v1.Health/Check` method path. */
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

/** HealthCheckResponse.ServingStatus values (names as in the proto, the metric label). */
export const SERVING_STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/** A serving status name. */
export type ServingStatus = (typeof SERVING_STATUSES)[number];

/** Encodes a HealthCheckRequest. */
export function encodeHealthRequest(service: string): Buffer {
  const w = Writer.create();
  if (service !== '') w.uint32(10).string(service);
  return Buffer.from(w.finish());
}

/** Decodes a HealthCheckRequest's service. */
export function decodeHealthRequest(buf: Buffer): string {
  const r = Reader.create(buf);
  let service = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) service = r.string();
    else r.skipType(tag & 7);
  }
  return service;
}

/** Encodes a HealthCheckResponse. */
export function encodeHealthResponse(status: number): Buffer {
  const w = Writer.create();
  if (status !== 0) w.uint32(8).int32(status);
  return Buffer.from(w.finish());
}

/** Decodes a HealthCheckResponse's status number (unknown numbers kept). */
export function decodeHealthResponse(buf: Buffer): number {
  const r = Reader.create(buf);
  let status = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 0) status = r.int32();
    else r.skipType(tag & 7);
  }
  return status;
}
