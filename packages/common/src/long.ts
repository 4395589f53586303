/** Conversions between protobufjs 64-bit values (Long | number) and bigint. */
import Long from 'long';

/** A protobufjs 64-bit field value as decoded or as set. */
export type Int64 = number | Long | null | undefined;

/** Converts a decoded 64-bit field to bigint (null/undefined → 0n). */
export function toBigInt(v: Int64): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  return BigInt(v.toString());
}

/** Converts a bigint to an unsigned Long for an encoded fixed64/uint64 field. */
export function toULong(v: bigint): Long {
  return Long.fromString(v.toString(), true);
}

/** Converts a decoded 64-bit field to a JS number (exact below 2^53). */
export function toNumber(v: Int64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
