import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DNS_TYPES, decodeMessage, DnsDecodeError, encodeMessage, encodeQuery, rcodeName, rdata } from './dns-wire';

describe('dns wire', () => {
  it('a query round-trips', () => {
    const m = decodeMessage(encodeQuery(0xbeef, 'Example.COM', DNS_TYPES.MX!, 1, true));
    assert.equal(m.id, 0xbeef);
    assert.equal(m.response, false);
    assert.equal(m.recursionDesired, true);
    assert.deepEqual(m.questions, [{ name: 'Example.COM.', type: 15, class: 1 }]);
  });

  it('records decode to the blackbox (miekg/dns) text form', () => {
    const rr = (type: number, data: Buffer) => ({ name: 'x.test.', type, class: 1, ttl: 60, data });
    const buf = encodeMessage({
      id: 1, response: true, opcode: 0, authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: false, rcode: 3,
      questions: [], authority: [], additional: [],
      answers: [
        rr(1, rdata.a('192.0.2.7')),
        rr(28, rdata.aaaa('2001:db8::1')),
        rr(28, rdata.aaaa('::1')),
        rr(15, rdata.mx(10, 'mail.x.test')),
        rr(16, rdata.txt('v=spf1 "q" -all', 'two')),
        rr(6, rdata.soa('ns.x.test', 'host.x.test', 7, 1, 2, 3, 4)),
        rr(33, rdata.srv(1, 2, 443, 'svc.x.test')),
        rr(99, Buffer.from([0xab, 0xcd])),
      ],
    });
    const m = decodeMessage(buf);
    assert.equal(m.rcode, 3);
    assert.equal(rcodeName(m.rcode), 'NXDOMAIN');
    assert.deepEqual(m.answers.map((r) => r.text), [
      'x.test.\t60\tIN\tA\t192.0.2.7',
      'x.test.\t60\tIN\tAAAA\t2001:db8::1',
      'x.test.\t60\tIN\tAAAA\t::1',
      'x.test.\t60\tIN\tMX\t10 mail.x.test.',
      'x.test.\t60\tIN\tTXT\t"v=spf1 \\"q\\" -all" "two"',
      'x.test.\t60\tIN\tSOA\tns.x.test. host.x.test. 7 1 2 3 4',
      'x.test.\t60\tIN\tSRV\t1 2 443 svc.x.test.',
      'x.test.\t60\tIN\tTYPE99\t\\# 2 abcd',
    ]);
  });

  it('follows compression pointers and rejects loops and truncation', () => {
    // header: 1 answer; answer name = pointer to offset 12 where "a.test." is written as a question
    const q = encodeQuery(5, 'a.test', 1, 1, false);
    const answer = Buffer.from([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 2, 0xc0, 12]); // CNAME → pointer
    const msg = Buffer.concat([q, answer]);
    msg.writeUInt16BE(1, 6);
    const m = decodeMessage(msg);
    assert.equal(m.answers[0]?.text, 'a.test.\t9\tIN\tCNAME\ta.test.');
    const loop = Buffer.from(msg);
    loop.writeUInt8(0xc0, 12);
    loop.writeUInt8(12, 13);
    assert.throws(() => decodeMessage(loop), DnsDecodeError);
    assert.throws(() => decodeMessage(msg.subarray(0, msg.length - 3)), DnsDecodeError);
  });
});
