/**
 * The gRPC health protocol (grpc/health/v1/health.proto) — two one-field messages, so
 * encoded by hand with protobufjs' Writer/Reader instead of a .proto file and a loader:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }
 * — and the Check call itself on node:http2 (grpc.ts says why not grpc-js).
 */
import * as http2 from 'node:http2';
import { Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { Reader, Writer } from 'protobufjs/minimal';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';

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

/** gRPC status codes used here (google.rpc.Code). */
export const GrpcStatus = { OK: 0, CANCELLED: 1, UNKNOWN: 2, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;
/** gRPC status code names, by code. */
export const STATUS_NAMES: readonly string[] = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** The gRPC code of an HTTP status without grpc-status (gRPC spec: HTTP to gRPC status code mapping). */
export function grpcStatusOfHttp(status: number): number {
  if (status === 400) return GrpcStatus.INTERNAL;
  if (status === 401) return GrpcStatus.UNAUTHENTICATED;
  if (status === 403) return GrpcStatus.PERMISSION_DENIED;
  if (status === 404) return GrpcStatus.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return GrpcStatus.UNAVAILABLE;
  return GrpcStatus.UNKNOWN;
}

/** The gRPC code of a stream reset by the server without a status (gRPC spec: RST_STREAM mapping). */
function grpcStatusOfRst(code: number): number {
  if (code === http2.constants.NGHTTP2_REFUSED_STREAM) return GrpcStatus.UNAVAILABLE;
  if (code === http2.constants.NGHTTP2_CANCEL) return GrpcStatus.CANCELLED;
  if (code === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) return GrpcStatus.RESOURCE_EXHAUSTED;
  if (code === http2.constants.NGHTTP2_INADEQUATE_SECURITY) return GrpcStatus.PERMISSION_DENIED;
  return GrpcStatus.INTERNAL;
}

/** The end of a call: a gRPC status (with the health status when OK), or a transport failure. */
export type CallResult =
  | { kind: 'status'; code: number; message: string; serving?: number }
  | { kind: 'transport'; failure: FailureCode; message: string };

/** gRPC's percent-encoded grpc-message. */
function decodeGrpcMessage(v: unknown): string {
  const s = Array.isArray(v) ? String(v[0] ?? '') : v === undefined ? '' : String(v);
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The one response message of a unary call from the DATA bytes (5-byte prefix + message). */
function responseMessage(data: Buffer, encoding: string | undefined): Buffer | string {
  if (data.length < 5) return data.length === 0 ? 'the server sent no response message' : `truncated message prefix (${data.length} bytes)`;
  const len = data.readUInt32BE(1);
  if (data.length < 5 + len) return `truncated response message (${data.length - 5} of ${len} bytes)`;
  const body = data.subarray(5, 5 + len);
  if (data[0] === 0) return body;
  try {
    if (encoding === 'gzip') return gunzipSync(body);
    if (encoding === 'deflate') return inflateSync(body);
  } catch (err) {
    return `decompressing the response (${encoding}): ${(err as Error).message}`;
  }
  return `compressed response with unsupported grpc-encoding ${JSON.stringify(encoding ?? '')}`;
}

/**
 * One Health/Check unary call on an HTTP/2 session over `sock` (connected, TLS done):
 * HEADERS with `content-type: application/grpc`, one length-prefixed message, the status
 * from the trailers (or a Trailers-Only response), an HTTP status without grpc-status
 * mapped as the gRPC spec says. Resolves, never rejects; the caller destroys the socket.
 */
export function healthCheck(sock: Socket, scheme: 'http' | 'https', authority: string, service: string, metadata: Readonly<Record<string, string>>, timeoutMs: number, signal: AbortSignal): Promise<CallResult> {
  return new Promise<CallResult>((resolve) => {
    let done = false;
    let session: http2.ClientHttp2Session | undefined;
    const finish = (r: CallResult): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      session?.destroy();
      resolve(r);
    };
    const transport = (what: string) => (err: Error): void => {
      const code = failureCodeOf(err);
      finish({ kind: 'transport', failure: code === FailureCodes.ERROR ? FailureCodes.GRPC_ERROR : code, message: `${what}: ${err.message}` });
    };
    const onAbort = (): void => finish({ kind: 'transport', failure: FailureCodes.TIMEOUT, message: 'timeout waiting for the Health/Check reply' });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    try {
      session = http2.connect(`${scheme}://${authority}`, { createConnection: () => sock });
    } catch (err) {
      return finish({ kind: 'transport', failure: FailureCodes.INVALID_TARGET, message: `HTTP/2 connection to ${authority}: ${(err as Error).message}` });
    }
    session.on('error', transport('HTTP/2 connection'));
    const headers: http2.OutgoingHttpHeaders = { ...metadata };
    Object.assign(headers, {
      ':method': 'POST',
      ':scheme': scheme,
      ':path': HEALTH_CHECK_PATH,
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.min(99_999_999, Math.max(1, timeoutMs))}m`,
      'user-agent': 'probemesh-prober grpc-health',
    });
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request(headers);
    } catch (err) {
      // e.g. a metadata key HTTP/2 forbids (connection, upgrade, …)
      return finish({ kind: 'transport', failure: FailureCodes.ERROR, message: `request headers: ${(err as Error).message}` });
    }
    const request = encodeHealthRequest(service);
    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    request.copy(frame, 5);
    req.end(frame);

    let responseHeaders: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (responseHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', transport('HTTP/2 stream'));
    req.on('close', () => {
      if (done) return;
      // A status in the trailers, or in the headers of a Trailers-Only response.
      const statusHeader = trailers?.['grpc-status'] ?? responseHeaders?.['grpc-status'];
      if (statusHeader !== undefined) {
        const code = Number(statusHeader);
        const message = decodeGrpcMessage(trailers?.['grpc-message'] ?? responseHeaders?.['grpc-message']);
        if (!Number.isInteger(code) || code < 0) return finish({ kind: 'status', code: GrpcStatus.INTERNAL, message: `malformed grpc-status ${JSON.stringify(statusHeader)}` });
        if (code !== GrpcStatus.OK) return finish({ kind: 'status', code, message });
        const enc = responseHeaders?.['grpc-encoding'];
        const msg = responseMessage(Buffer.concat(chunks), Array.isArray(enc) ? enc[0] : enc);
        if (typeof msg === 'string') return finish({ kind: 'status', code: GrpcStatus.INTERNAL, message: msg });
        try {
          return finish({ kind: 'status', code: GrpcStatus.OK, message: '', serving: decodeHealthResponse(msg) });
        } catch (err) {
          return finish({ kind: 'status', code: GrpcStatus.INTERNAL, message: `malformed HealthCheckResponse: ${(err as Error).message}` });
        }
      }
      // No response and the connection is gone (closed by the peer, not an HTTP/2 peer): Node
      // resets the stream itself (CANCEL); only a reset on a live connection is the server's.
      if (responseHeaders === undefined && (session!.destroyed || session!.closed || sock.destroyed)) return finish({ kind: 'transport', failure: FailureCodes.RESET, message: 'the connection closed before a response (not a gRPC server?)' });
      const httpStatus = Number(responseHeaders?.[':status'] ?? 0);
      if (httpStatus !== 0 && httpStatus !== 200) return finish({ kind: 'status', code: grpcStatusOfHttp(httpStatus), message: `HTTP status ${httpStatus} without grpc-status` });
      if (req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) return finish({ kind: 'status', code: grpcStatusOfRst(req.rstCode), message: `stream reset by the server (HTTP/2 error ${req.rstCode})` });
      if (responseHeaders === undefined) return finish({ kind: 'transport', failure: FailureCodes.RESET, message: 'the connection closed before a response' });
      finish({ kind: 'status', code: GrpcStatus.INTERNAL, message: 'the server closed the stream without a grpc-status' });
    });
  });
}
