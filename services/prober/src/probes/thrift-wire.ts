/**
 * Thrift messages in the binary (strict) and compact protocols, both directions, no
 * dependency: a probe only needs a call header, a few simple arguments and a generic
 * walk over the reply struct (field 0 = result, field >= 1 = a declared exception).
 * Framed transport = a 4-byte big-endian length before each message; buffered = none.
 */

/** Thrift protocol. */
export type ThriftProtocol = 'binary' | 'compact';

/** Message types. */
export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;

/** A decoded or encodable value (structs are field lists). */
export type ThriftValue = boolean | number | bigint | string | Buffer | ThriftField[] | ThriftValue[] | Map<ThriftValue, ThriftValue>;

/** Value types of our field model (binary protocol type ids). */
export const TType = { BOOL: 2, BYTE: 3, DOUBLE: 4, I16: 6, I32: 8, I64: 10, STRING: 11, STRUCT: 12, MAP: 13, SET: 14, LIST: 15 } as const;

/** One struct field. */
export interface ThriftField {
  readonly id: number;
  /** A {@link TType} value. */
  readonly type: number;
  readonly value: ThriftValue;
}

/** A message: header and its struct (args, result, or TApplicationException). */
export interface ThriftMessage {
  readonly name: string;
  readonly type: number;
  readonly seqid: number;
  readonly fields: readonly ThriftField[];
}

/** The buffer ends before the message does (read more and retry). */
export class ThriftIncomplete extends Error {
  override readonly name = 'ThriftIncomplete';
}
/** The bytes are not a Thrift message of this protocol. */
export class ThriftDecodeError extends Error {
  override readonly name = 'ThriftDecodeError';
}

// Compact protocol type ids ↔ binary ones.
const TO_COMPACT: Readonly<Record<number, number>> = { 2: 1, 3: 3, 6: 4, 8: 5, 10: 6, 4: 7, 11: 8, 15: 9, 14: 10, 13: 11, 12: 12 };
const FROM_COMPACT: Readonly<Record<number, number>> = { 1: 2, 2: 2, 3: 3, 4: 6, 5: 8, 6: 10, 7: 4, 8: 11, 9: 15, 10: 14, 11: 13, 12: 12 };

class Out {
  parts: Buffer[] = [];
  bytes(b: Buffer): void {
    this.parts.push(b);
  }
  u8(n: number): void {
    this.parts.push(Buffer.from([n & 0xff]));
  }
  i16(n: number): void {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    this.parts.push(b);
  }
  i32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n | 0);
    this.parts.push(b);
  }
  i64(n: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.parts.push(b);
  }
  varint(n: bigint): void {
    let v = BigInt.asUintN(64, n);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.parts.push(Buffer.from(out));
  }
  zigzag(n: bigint, bits: 32 | 64): void {
    this.varint(BigInt.asUintN(bits, (n << 1n) ^ (n >> BigInt(bits - 1))));
  }
}

class In {
  off = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.off + n > this.buf.length) throw new ThriftIncomplete(`need ${n} more byte(s) at ${this.off}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  i16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.off);
    this.off += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.off);
    this.off += 8;
    return v;
  }
  bytes(n: number): Buffer {
    if (n < 0 || n > 16 * 1024 * 1024) throw new ThriftDecodeError(`bad length ${n}`);
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    throw new ThriftDecodeError('varint too long');
  }
  zigzag(): bigint {
    const v = this.varint();
    return (v >> 1n) ^ -(v & 1n);
  }
}

function writeValue(o: Out, p: ThriftProtocol, type: number, v: ThriftValue): void {
  const c = p === 'compact';
  switch (type) {
    case TType.BOOL:
      return o.u8(c ? (v ? 1 : 2) : v ? 1 : 0);
    case TType.BYTE:
      return o.u8(Number(v));
    case TType.I16:
      return c ? o.zigzag(BigInt(v as number), 32) : o.i16(Number(v));
    case TType.I32:
      return c ? o.zigzag(BigInt(v as number), 32) : o.i32(Number(v));
    case TType.I64:
      return c ? o.zigzag(BigInt(v as number | bigint), 64) : o.i64(BigInt(v as number | bigint));
    case TType.DOUBLE: {
      const b = Buffer.alloc(8);
      if (c) b.writeDoubleLE(Number(v));
      else b.writeDoubleBE(Number(v));
      return o.bytes(b);
    }
    case TType.STRING: {
      const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
      if (c) o.varint(BigInt(b.length));
      else o.i32(b.length);
      return o.bytes(b);
    }
    case TType.STRUCT:
      return writeStruct(o, p, v as ThriftField[]);
    default:
      throw new RangeError(`thrift: writing type ${type} is not supported`);
  }
}

function writeStruct(o: Out, p: ThriftProtocol, fields: readonly ThriftField[]): void {
  let last = 0;
  for (const f of fields) {
    if (p === 'binary') {
      o.u8(f.type);
      o.i16(f.id);
      writeValue(o, p, f.type, f.value);
      continue;
    }
    // Compact: bools live in the field header's type nibble.
    const ct = f.type === TType.BOOL ? (f.value ? 1 : 2) : TO_COMPACT[f.type]!;
    const delta = f.id - last;
    if (delta > 0 && delta <= 15) o.u8((delta << 4) | ct);
    else {
      o.u8(ct);
      o.zigzag(BigInt(f.id), 32);
    }
    last = f.id;
    if (f.type !== TType.BOOL) writeValue(o, p, f.type, f.value);
  }
  o.u8(0);
}

/** Encodes a message (without transport framing). */
export function encodeThriftMessage(p: ThriftProtocol, m: ThriftMessage): Buffer {
  const o = new Out();
  const name = Buffer.from(m.name, 'utf8');
  if (p === 'binary') {
    o.i32((0x80010000 | m.type) | 0);
    o.i32(name.length);
    o.bytes(name);
    o.i32(m.seqid);
  } else {
    o.u8(0x82);
    o.u8((m.type << 5) | 1);
    o.varint(BigInt(m.seqid >>> 0));
    o.varint(BigInt(name.length));
    o.bytes(name);
  }
  writeStruct(o, p, m.fields);
  return Buffer.concat(o.parts);
}

/** Adds the framed transport's length prefix. */
export function frame(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function readValue(i: In, p: ThriftProtocol, type: number, depth: number, boolInHeader?: boolean): ThriftValue {
  if (depth > 64) throw new ThriftDecodeError('nesting too deep');
  const c = p === 'compact';
  switch (type) {
    case TType.BOOL:
      return boolInHeader ?? (c ? i.u8() === 1 : i.u8() !== 0);
    case TType.BYTE:
      return i.u8();
    case TType.I16:
      return c ? Number(i.zigzag()) : i.i16();
    case TType.I32:
      return c ? Number(i.zigzag()) : i.i32();
    case TType.I64:
      return c ? i.zigzag() : i.i64();
    case TType.DOUBLE: {
      const b = i.bytes(8);
      return c ? b.readDoubleLE(0) : b.readDoubleBE(0);
    }
    case TType.STRING: {
      const b = i.bytes(c ? Number(i.varint()) : i.i32());
      return b.toString('utf8');
    }
    case TType.STRUCT:
      return readStruct(i, p, depth + 1);
    case TType.LIST:
    case TType.SET: {
      let et: number;
      let n: number;
      if (c) {
        const h = i.u8();
        et = FROM_COMPACT[h & 0x0f] ?? -1;
        n = h >> 4 === 0x0f ? Number(i.varint()) : h >> 4;
      } else {
        et = i.u8();
        n = i.i32();
      }
      if (n < 0 || n > 1_000_000) throw new ThriftDecodeError(`bad collection size ${n}`);
      return Array.from({ length: n }, () => readValue(i, p, et, depth + 1));
    }
    case TType.MAP: {
      let n: number;
      let kt = 0;
      let vt = 0;
      if (c) {
        n = Number(i.varint());
        if (n > 0) {
          const kv = i.u8();
          kt = FROM_COMPACT[kv >> 4] ?? -1;
          vt = FROM_COMPACT[kv & 0x0f] ?? -1;
        }
      } else {
        kt = i.u8();
        vt = i.u8();
        n = i.i32();
      }
      if (n < 0 || n > 1_000_000) throw new ThriftDecodeError(`bad map size ${n}`);
      const m = new Map<ThriftValue, ThriftValue>();
      for (let k = 0; k < n; k++) m.set(readValue(i, p, kt, depth + 1), readValue(i, p, vt, depth + 1));
      return m;
    }
    default:
      throw new ThriftDecodeError(`unknown field type ${type}`);
  }
}

function readStruct(i: In, p: ThriftProtocol, depth: number): ThriftField[] {
  const fields: ThriftField[] = [];
  let last = 0;
  for (;;) {
    const h = i.u8();
    if (h === 0) return fields;
    let type: number;
    let id: number;
    let boolInHeader: boolean | undefined;
    if (p === 'binary') {
      type = h;
      id = i.i16();
    } else {
      const ct = h & 0x0f;
      type = FROM_COMPACT[ct] ?? -1;
      if (ct === 1 || ct === 2) boolInHeader = ct === 1;
      id = h >> 4 !== 0 ? last + (h >> 4) : Number(i.zigzag());
      last = id;
    }
    fields.push({ id, type, value: readValue(i, p, type, depth, boolInHeader) });
  }
}

/**
 * Decodes one message from the start of `buf`; returns it and the bytes used. Throws
 * {@link ThriftIncomplete} when more bytes are needed, {@link ThriftDecodeError} when
 * the bytes are not this protocol.
 */
export function decodeThriftMessage(p: ThriftProtocol, buf: Buffer): { message: ThriftMessage; used: number } {
  const i = new In(buf);
  let name: string;
  let type: number;
  let seqid: number;
  if (p === 'binary') {
    const v = i.i32();
    if ((v & 0xffff0000) !== (0x80010000 | 0)) throw new ThriftDecodeError(`not a strict binary-protocol message (header 0x${(v >>> 0).toString(16)})`);
    type = v & 0xff;
    name = i.bytes(i.i32()).toString('utf8');
    seqid = i.i32();
  } else {
    const pid = i.u8();
    if (pid !== 0x82) throw new ThriftDecodeError(`not a compact-protocol message (first byte 0x${pid.toString(16)})`);
    const vt = i.u8();
    if ((vt & 0x1f) !== 1) throw new ThriftDecodeError(`unsupported compact protocol version ${vt & 0x1f}`);
    type = vt >> 5;
    seqid = Number(BigInt.asIntN(32, i.varint()));
    name = i.bytes(Number(i.varint())).toString('utf8');
  }
  const fields = readStruct(i, p, 0);
  return { message: { name, type, seqid, fields }, used: i.off };
}
