/**
 * Thrift probe (probemesh; blackbox has none): connect to `host:port`, call `method`
 * (no arguments, or simple configured ones) over the binary or compact protocol, framed
 * or buffered transport, optionally multiplexed (`service:method`). Success = a T_REPLY
 * for our call whose result struct sets no exception field (ids >= 1).
 *
 * Phases: resolve → address known (0 for an IP literal); connect → TCP connected;
 * call → request written and the whole reply read.
 */
import { isIP } from 'node:net';
import { addIssue, Infer, list, num, obj, optional, str } from '@probemesh/common';
import { dialTcp } from './dial';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { phasesFromMarks } from './phases';
import { StreamReader } from './stream-reader';
import { ipProtocolFallback, parseHostPort, preferredIpProtocol, resolveAddress, ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { decodeThriftMessage, encodeThriftMessage, frame, MessageType, ThriftDecodeError, ThriftField, ThriftIncomplete, ThriftMessage, ThriftProtocol, TType } from './thrift-wire';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

const ARG_TYPES = { bool: TType.BOOL, i32: TType.I32, i64: TType.I64, double: TType.DOUBLE, string: TType.STRING } as const;

/** Options of a `thrift` probe module. */
export const thriftProbeSchema = obj({
  method: str({ nonEmpty: true, doc: 'Method to call (required).' }),
  protocol: str({ oneOf: ['binary', 'compact'], default: 'binary', doc: 'Thrift protocol. @default "binary"' }),
  transport: str({ oneOf: ['framed', 'buffered'], default: 'framed', doc: 'Thrift transport. @default "framed"' }),
  service: optional(str({ nonEmpty: true, doc: 'Service name for a TMultiplexedProcessor (the call is named "service:method").' })),
  args: list(obj({
    id: num({ int: true, min: 1, max: 32767, doc: 'Field id of the argument.' }),
    type: str({ oneOf: Object.keys(ARG_TYPES), doc: 'bool, i32, i64, double or string.' }),
    value: str({ doc: 'The value, written as text ("42", "true", "hello").' }),
  }, {
    check(v, path, ctx) {
      const ok = v.type === 'string' || (v.type === 'bool' ? /^(true|false)$/.test(v.value) : v.type === 'double' ? Number.isFinite(Number(v.value)) && v.value.trim() !== '' : /^-?\d+$/.test(v.value));
      if (!ok) addIssue(ctx, path ? `${path}.value` : 'value', `${JSON.stringify(v.value)} is not a valid ${v.type}`);
    },
  }), { default: [], doc: 'Call arguments. @default []' }),
  preferred_ip_protocol: preferredIpProtocol(),
  ip_protocol_fallback: ipProtocolFallback(),
  source_ip_address: optional(str({ nonEmpty: true, doc: 'Local address to connect from.' })),
});

/** Parsed options of a `thrift` probe module. */
export type ThriftProbeOptions = Infer<typeof thriftProbeSchema>;

/** Phase names of the thrift probe, in order. */
export const THRIFT_PHASES = ['resolve', 'connect', 'call'] as const;

/** The argument struct of a call from the configured args. */
export function argFields(args: ThriftProbeOptions['args']): ThriftField[] {
  return args.map((a) => {
    const type = ARG_TYPES[a.type as keyof typeof ARG_TYPES];
    const value = a.type === 'bool' ? a.value === 'true' : a.type === 'i64' ? BigInt(a.value) : a.type === 'string' ? a.value : Number(a.value);
    return { id: a.id, type, value };
  });
}

/** Creates a thrift probe. */
export function thriftProbe(options: ThriftProbeOptions, deps: { resolveAll?: ResolveAllFn } = {}): Probe {
  const resolveAll = deps.resolveAll ?? systemResolveAll;
  const name = options.service !== undefined ? `${options.service}:${options.method}` : options.method;
  const args = argFields(options.args);
  return { kind: 'thrift', run: (target, signal, ctx) => runThrift(options, name, args, resolveAll, target, signal, ctx) };
}

async function runThrift(opts: ThriftProbeOptions, name: string, args: ThriftField[], resolveAll: ResolveAllFn, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined, undefined];
  const gauges: GaugeValue[] = [];
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => ({
    success: code === '', failureCode: code, failureMessage: message,
    phases: phasesFromMarks(THRIFT_PHASES, t0, marks, marks[2] ?? clock.monoNs()), httpStatusCode: 0, httpVersion: 0, gauges,
  });
  const hp = parseHostPort(target.url);
  if (!hp) return outcome(FailureCodes.INVALID_TARGET, `invalid Thrift target ${JSON.stringify(target.url)} (want host:port)`);
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(marks[0] - t0) / 1e9 });
  const dialed = await dialTcp({ address: addr.address, family: addr.family, port: hp.port, sourceIp: opts.source_ip_address }, signal);
  if (!dialed.ok) return outcome(dialed.code, dialed.message);
  marks[1] = clock.monoNs();
  const sock = dialed.socket;
  const reader = new StreamReader(sock);
  const abortErr = new Error('timeout');
  const onAbort = (): void => reader.fail(abortErr);
  signal.addEventListener('abort', onAbort, { once: true });
  const proto = opts.protocol as ThriftProtocol;
  const seqid = 1 + Math.floor(Math.random() * 0x7ffffffe);
  try {
    const msg = encodeThriftMessage(proto, { name, type: MessageType.CALL, seqid, fields: args });
    sock.write(opts.transport === 'framed' ? frame(msg) : msg);
    const reply = await readReply(reader, proto, opts.transport === 'framed');
    if (!reply) return outcome(FailureCodes.RESET, 'connection closed before a complete reply');
    marks[2] = clock.monoNs();
    if (reply.type === MessageType.EXCEPTION) {
      const text = reply.fields.find((f) => f.id === 1 && typeof f.value === 'string')?.value;
      const kind = reply.fields.find((f) => f.id === 2)?.value;
      return outcome(FailureCodes.THRIFT_EXCEPTION, `${name}: TApplicationException (type ${kind ?? '?'}): ${text ?? ''}`);
    }
    if (reply.type !== MessageType.REPLY) return outcome(FailureCodes.THRIFT_PROTOCOL, `expected a reply, got message type ${reply.type}`);
    if (reply.seqid !== seqid) return outcome(FailureCodes.THRIFT_PROTOCOL, `reply seqid ${reply.seqid} does not match the call's ${seqid}`);
    const result = reply.fields.find((f) => f.id === 0 && f.type === TType.STRUCT)?.value as ThriftField[] | undefined;
    const resultStruct = result ?? reply.fields;
    const exc = resultStruct.find((f) => f.id >= 1);
    if (exc) {
      const detail = Array.isArray(exc.value) ? (exc.value as ThriftField[]).find((f) => typeof f.value === 'string')?.value : undefined;
      return outcome(FailureCodes.THRIFT_EXCEPTION, `${name} threw declared exception field ${exc.id}${detail !== undefined ? `: ${String(detail)}` : ''}`);
    }
    return outcome('', '');
  } catch (err) {
    if (err === abortErr || signal.aborted) return outcome(FailureCodes.TIMEOUT, `timeout after ${target.timeoutMs}ms waiting for the reply to ${name}`);
    if (err instanceof ThriftDecodeError) return outcome(FailureCodes.THRIFT_PROTOCOL, `bad reply (protocol ${opts.protocol}, transport ${opts.transport}?): ${err.message}`);
    return outcome(failureCodeOf(err), `${name}: ${(err as Error).message}`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    sock.destroy();
  }
}

/** Reads one message; for buffered transport, decodes as bytes arrive until it is complete. */
async function readReply(reader: StreamReader, proto: ThriftProtocol, framed: boolean): Promise<ThriftMessage | null> {
  if (framed) {
    const len = await reader.exact(4);
    if (!len) return null;
    const size = len.readUInt32BE(0);
    if (size > 16 * 1024 * 1024) throw new ThriftDecodeError(`frame of ${size} bytes (not a framed transport?)`);
    const body = await reader.exact(size);
    return body && decodeThriftMessage(proto, body).message;
  }
  let message: ThriftMessage | undefined;
  const got = await reader.read((buf) => {
    if (buf.length === 0) return undefined;
    try {
      const r = decodeThriftMessage(proto, buf);
      message = r.message;
      return r.used;
    } catch (err) {
      if (err instanceof ThriftIncomplete) return undefined;
      throw err;
    }
  });
  return got && message ? message : null;
}
