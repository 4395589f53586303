/**
 * Zoo DNS server: UDP and TCP on the same 127.0.0.1 port, answering from a tiny zone
 * with known behaviour (see {@link DNS_ZOO_NAMES}): records for `ok.zoo.test`, NXDOMAIN
 * for unknown names, SERVFAIL for `servfail.zoo.test`, no answer ever for
 * `slow.zoo.test` (timeouts), REFUSED for `refused.zoo.test`.
 */
import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { DNS_RCODES, DNS_TYPES, DnsMessage, DnsRecord, decodeMessage, encodeMessage, rdata } from '../../probes/dns-wire';

/** Names with a known behaviour. */
export const DNS_ZOO_NAMES = {
  /** A 192.0.2.1 + 192.0.2.2, AAAA 2001:db8::1, MX 10 mail.zoo.test (+ glue A in additional), TXT. */
  ok: 'ok.zoo.test.',
  /** A 192.0.2.25 (the MX glue). */
  mail: 'mail.zoo.test.',
  /** Never answered. */
  slow: 'slow.zoo.test.',
  /** SERVFAIL. */
  servfail: 'servfail.zoo.test.',
  /** REFUSED. */
  refused: 'refused.zoo.test.',
  /** Zone apex: SOA + NS. */
  apex: 'zoo.test.',
} as const;

const IN = 1;
const rr = (name: string, type: keyof typeof DNS_TYPES, data: Buffer, ttl = 300): DnsRecord => ({ name, type: DNS_TYPES[type]!, class: IN, ttl, data });
const SOA = rr(DNS_ZOO_NAMES.apex, 'SOA', rdata.soa('ns1.zoo.test.', 'hostmaster.zoo.test.', 2024010101, 3600, 600, 86400, 60), 3600);

const ZONE: readonly DnsRecord[] = [
  SOA,
  rr(DNS_ZOO_NAMES.apex, 'NS', rdata.name('ns1.zoo.test.')),
  rr(DNS_ZOO_NAMES.ok, 'A', rdata.a('192.0.2.1')),
  rr(DNS_ZOO_NAMES.ok, 'A', rdata.a('192.0.2.2')),
  rr(DNS_ZOO_NAMES.ok, 'AAAA', rdata.aaaa('2001:db8::1')),
  rr(DNS_ZOO_NAMES.ok, 'MX', rdata.mx(10, DNS_ZOO_NAMES.mail)),
  rr(DNS_ZOO_NAMES.ok, 'TXT', rdata.txt('v=spf1 -all')),
  rr(DNS_ZOO_NAMES.mail, 'A', rdata.a('192.0.2.25')),
];

/** A running zoo DNS server. */
export interface DnsZoo {
  /** `127.0.0.1:<port>`, the probe target. */
  readonly target: string;
  readonly port: number;
  /** Queries received so far, by transport. */
  readonly queries: { udp: number; tcp: number };
  close(): Promise<void>;
}

/** The zoo's answer to `q` (undefined = stay silent). Exported for unit tests. */
export function answer(q: DnsMessage): DnsMessage | undefined {
  const question = q.questions[0];
  const base = { id: q.id, response: true, opcode: 0, authoritative: true, truncated: false, recursionDesired: q.recursionDesired, recursionAvailable: false, questions: q.questions, answers: [] as DnsRecord[], authority: [] as DnsRecord[], additional: [] as DnsRecord[] };
  if (!question) return { ...base, rcode: DNS_RCODES.FORMERR! };
  const name = question.name.toLowerCase();
  if (name === DNS_ZOO_NAMES.slow) return undefined;
  if (name === DNS_ZOO_NAMES.servfail) return { ...base, authoritative: false, rcode: DNS_RCODES.SERVFAIL! };
  if (name === DNS_ZOO_NAMES.refused) return { ...base, authoritative: false, rcode: DNS_RCODES.REFUSED! };
  const owned = ZONE.filter((r) => r.name === name);
  if (owned.length === 0) return { ...base, rcode: DNS_RCODES.NXDOMAIN!, authority: [SOA] };
  const answers = owned.filter((r) => question.type === DNS_TYPES.ANY || r.type === question.type);
  const additional = answers.some((r) => r.type === DNS_TYPES.MX) ? ZONE.filter((r) => r.name === DNS_ZOO_NAMES.mail && r.type === DNS_TYPES.A) : [];
  return { ...base, rcode: 0, answers, authority: answers.length === 0 ? [SOA] : [], additional };
}

/** Starts the zoo DNS server on 127.0.0.1 (UDP and TCP share a random port). */
export async function startDnsZoo(): Promise<DnsZoo> {
  const queries = { udp: 0, tcp: 0 };
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = (udp.address() as AddressInfo).port;
    const tcp: Server = createServer((s) => serveTcp(s, queries));
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!ok) {
      udp.close();
      if (attempt < 20) continue;
      throw new Error('dns zoo: no port free for both UDP and TCP');
    }
    udp.on('message', (buf, rinfo) => {
      queries.udp++;
      let q: DnsMessage;
      try {
        q = decodeMessage(buf);
      } catch {
        return;
      }
      const a = answer(q);
      if (a) udp.send(encodeMessage(a), rinfo.port, rinfo.address);
    });
    const sockets = new Set<Socket>();
    tcp.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return {
      target: `127.0.0.1:${port}`,
      port,
      queries,
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
      },
    };
  }
}

function serveTcp(s: Socket, queries: { tcp: number }): void {
  let buf = Buffer.alloc(0);
  s.on('error', () => undefined);
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
      buf = buf.subarray(2 + msg.length);
      queries.tcp++;
      let q: DnsMessage;
      try {
        q = decodeMessage(msg);
      } catch {
        s.destroy();
        return;
      }
      const a = answer(q);
      if (!a) continue;
      const out = encodeMessage(a);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(out.length);
      s.write(Buffer.concat([len, out]));
    }
  });
}
