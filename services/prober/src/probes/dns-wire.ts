/**
 * DNS messages on the wire (RFC 1035), both directions, no dependency: the probe needs
 * to pick the server and transport per query and to see the rcode and all three
 * record sections, which node:dns does not offer. Records decode to the text form
 * blackbox (miekg/dns `RR.String()`) validates regexps against:
 * `name.\tTTL\tCLASS\tTYPE\tRDATA`.
 */
import { isIP } from 'node:net';

/** Record types by mnemonic (the ones the probe and the zoo use, plus ANY). */
export const DNS_TYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 };
/** Classes by mnemonic. */
export const DNS_CLASSES: Readonly<Record<string, number>> = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 };
/** Response codes by mnemonic (blackbox `valid_rcodes` spelling). */
export const DNS_RCODES: Readonly<Record<string, number>> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10 };

const nameOfCode = (table: Readonly<Record<string, number>>, code: number, prefix: string): string => Object.keys(table).find((k) => table[k] === code) ?? `${prefix}${code}`;
/** `A`, `TYPE99` for unknown. */
export const typeName = (t: number): string => nameOfCode(DNS_TYPES, t, 'TYPE');
/** `IN`, `CLASS9` for unknown. */
export const className = (c: number): string => nameOfCode(DNS_CLASSES, c, 'CLASS');
/** `NOERROR`, `RCODE12` for unknown. */
export const rcodeName = (r: number): string => nameOfCode(DNS_RCODES, r, 'RCODE');

/** A question. */
export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

/** A resource record; `data` is the raw RDATA (names uncompressed when built here). */
export interface DnsRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly data: Buffer;
  /** Text form `name.\tttl\tCLASS\tTYPE\trdata` (set by the decoder). */
  readonly text?: string;
}

/** A DNS message. */
export interface DnsMessage {
  readonly id: number;
  /** QR bit: a response. */
  readonly response: boolean;
  readonly opcode: number;
  readonly authoritative: boolean;
  readonly truncated: boolean;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  readonly rcode: number;
  readonly questions: readonly DnsQuestion[];
  readonly answers: readonly DnsRecord[];
  readonly authority: readonly DnsRecord[];
  readonly additional: readonly DnsRecord[];
}

/** Makes `name` fully qualified (trailing dot), lower-case untouched. */
export const fqdn = (name: string): string => (name.endsWith('.') ? name : `${name}.`);

function encodeName(name: string): Buffer {
  const labels = fqdn(name) === '.' ? [] : fqdn(name).slice(0, -1).split('.');
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'utf8');
    if (b.length === 0 || b.length > 63) throw new RangeError(`invalid DNS label ${JSON.stringify(l)} in ${JSON.stringify(name)}`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new RangeError(`DNS name too long: ${name}`);
  return out;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Encodes a message (no name compression: simple and always valid). */
export function encodeMessage(m: DnsMessage): Buffer {
  const flags = (m.response ? 0x8000 : 0) | ((m.opcode & 0xf) << 11) | (m.authoritative ? 0x400 : 0) | (m.truncated ? 0x200 : 0) | (m.recursionDesired ? 0x100 : 0) | (m.recursionAvailable ? 0x80 : 0) | (m.rcode & 0xf);
  const rr = (r: DnsRecord): Buffer[] => [encodeName(r.name), u16(r.type), u16(r.class), u32(r.ttl), u16(r.data.length), r.data];
  return Buffer.concat([
    u16(m.id), u16(flags), u16(m.questions.length), u16(m.answers.length), u16(m.authority.length), u16(m.additional.length),
    ...m.questions.flatMap((q) => [encodeName(q.name), u16(q.type), u16(q.class)]),
    ...m.answers.flatMap(rr), ...m.authority.flatMap(rr), ...m.additional.flatMap(rr),
  ]);
}

/** A query message for `name`/`type`/`class`. */
export function encodeQuery(id: number, name: string, type: number, cls: number, recursionDesired: boolean): Buffer {
  return encodeMessage({ id, response: false, opcode: 0, authoritative: false, truncated: false, recursionDesired, recursionAvailable: false, rcode: 0, questions: [{ name: fqdn(name), type, class: cls }], answers: [], authority: [], additional: [] });
}

/** RDATA builders for the zoo and tests. */
export const rdata = {
  a: (ip: string): Buffer => Buffer.from(ip.split('.').map(Number)),
  aaaa: (ip: string): Buffer => ipv6Bytes(ip),
  name: (n: string): Buffer => encodeName(n),
  mx: (pref: number, host: string): Buffer => Buffer.concat([u16(pref), encodeName(host)]),
  txt: (...strings: string[]): Buffer => Buffer.concat(strings.flatMap((s) => { const b = Buffer.from(s, 'utf8'); return [Buffer.from([b.length]), b]; })),
  soa: (ns: string, mbox: string, serial: number, refresh: number, retry: number, expire: number, minttl: number): Buffer =>
    Buffer.concat([encodeName(ns), encodeName(mbox), u32(serial), u32(refresh), u32(retry), u32(expire), u32(minttl)]),
  srv: (prio: number, weight: number, port: number, host: string): Buffer => Buffer.concat([u16(prio), u16(weight), u16(port), encodeName(host)]),
};

function ipv6Bytes(ip: string): Buffer {
  if (isIP(ip) !== 6) throw new RangeError(`not an IPv6 address: ${ip}`);
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

function ipv6Text(b: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A malformed message. */
export class DnsDecodeError extends Error {
  override readonly name = 'DnsDecodeError';
}

class Reader {
  constructor(readonly buf: Buffer, public off = 0) {}
  need(n: number): void {
    if (this.off + n > this.buf.length) throw new DnsDecodeError(`message truncated at byte ${this.off} (need ${n} more)`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  /** Reads a possibly compressed name; returns it fully qualified. */
  name(): string {
    const labels: string[] = [];
    let off = this.off;
    let jumped = false;
    for (let hops = 0; ; hops++) {
      if (hops > 128 || off >= this.buf.length) throw new DnsDecodeError('bad name (loop or out of bounds)');
      const len = this.buf[off]!;
      if (len === 0) {
        if (!jumped) this.off = off + 1;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        if (off + 1 >= this.buf.length) throw new DnsDecodeError('bad compression pointer');
        if (!jumped) this.off = off + 2;
        jumped = true;
        off = ((len & 0x3f) << 8) | this.buf[off + 1]!;
        continue;
      }
      if (off + 1 + len > this.buf.length) throw new DnsDecodeError('label out of bounds');
      labels.push(this.buf.toString('latin1', off + 1, off + 1 + len).replace(/[.\\]/g, (c) => `\\${c}`));
      off += 1 + len;
    }
    return labels.length === 0 ? '.' : `${labels.join('.')}.`;
  }
}

function rdataText(r: Reader, type: number, start: number, len: number): string {
  const end = start + len;
  const sub = (): Reader => new Reader(r.buf, start);
  const txt = (): string => {
    const parts: string[] = [];
    let o = start;
    while (o < end) {
      const l = r.buf[o]!;
      parts.push(`"${r.buf.toString('latin1', o + 1, Math.min(end, o + 1 + l)).replace(/["\\]/g, (c) => `\\${c}`)}"`);
      o += 1 + l;
    }
    return parts.join(' ');
  };
  switch (type) {
    case 1:
      return len === 4 ? [...r.buf.subarray(start, end)].join('.') : `\\# ${len} ${r.buf.toString('hex', start, end)}`;
    case 28:
      return len === 16 ? ipv6Text(r.buf.subarray(start, end)) : `\\# ${len} ${r.buf.toString('hex', start, end)}`;
    case 2:
    case 5:
    case 12:
      return sub().name();
    case 15: {
      const s = sub();
      return `${s.u16()} ${s.name()}`;
    }
    case 16:
      return txt();
    case 6: {
      const s = sub();
      return `${s.name()} ${s.name()} ${s.u32()} ${s.u32()} ${s.u32()} ${s.u32()} ${s.u32()}`;
    }
    case 33: {
      const s = sub();
      return `${s.u16()} ${s.u16()} ${s.u16()} ${s.name()}`;
    }
    default:
      return `\\# ${len} ${r.buf.toString('hex', start, end)}`;
  }
}

function readRecord(r: Reader): DnsRecord {
  const name = r.name();
  const type = r.u16();
  const cls = r.u16();
  const ttl = r.u32();
  const len = r.u16();
  r.need(len);
  const start = r.off;
  const text = type === 41 ? `;; OPT udp=${cls}` : `${name}\t${ttl}\t${className(cls)}\t${typeName(type)}\t${rdataText(r, type, start, len)}`;
  r.off = start + len;
  return { name, type, class: cls, ttl, data: r.buf.subarray(start, start + len), text };
}

/** Decodes a message; throws {@link DnsDecodeError} when malformed. */
export function decodeMessage(buf: Buffer): DnsMessage {
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const [qd, an, ns, ar] = [r.u16(), r.u16(), r.u16(), r.u16()];
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qd; i++) questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  const section = (n: number): DnsRecord[] => Array.from({ length: n }, () => readRecord(r));
  const answers = section(an);
  const authority = section(ns);
  const additional = section(ar);
  return {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x400) !== 0,
    truncated: (flags & 0x200) !== 0,
    recursionDesired: (flags & 0x100) !== 0,
    recursionAvailable: (flags & 0x80) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authority,
    additional,
  };
}
