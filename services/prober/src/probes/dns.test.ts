import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { AddressInfo } from 'node:net';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import { DNS_PHASES, dnsProbe, dnsProbeSchema, DnsProbeOptions } from './dns';
import { FailureCodes } from './failure';
import { ResolveAllFn } from './target-addr';
import { ProbeOutcome } from './types';
import { DnsZoo, startDnsZoo } from '../testing/zoo';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };

function options(yaml: string): DnsProbeOptions {
  return loadConfig(obj({ dns: dnsProbeSchema }), { text: `dns:\n${yaml.replace(/^/gm, '  ')}`, env: {} }).dns;
}
async function probe(target: string, yaml: string, timeoutMs = 2_000, resolveAll?: ResolveAllFn): Promise<ProbeOutcome> {
  return dnsProbe(options(yaml), { resolveAll }).run({ id: 't', url: target, module: 'dns', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}
const gauge = (o: ProbeOutcome, name: string): number | undefined => o.gauges.find((g) => g.name === name)?.value;
const phase = (o: ProbeOutcome, name: string): bigint => o.phases.find((p) => p.name === name)!.durationNs;

describe('dns probe (zoo DNS server)', () => {
  let zoo: DnsZoo;
  before(async () => (zoo = await startDnsZoo()));
  after(() => zoo.close());

  it('A over UDP: success, record counts, phases resolve=0 connect=0 request>0', async () => {
    const o = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: A');
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(o.phases.map((p) => p.name), [...DNS_PHASES]);
    assert.equal(phase(o, 'resolve'), 0n);
    assert.equal(phase(o, 'connect'), 0n);
    assert.ok(phase(o, 'request') > 0n);
    assert.equal(gauge(o, 'probe_dns_answer_rrs'), 2);
    assert.equal(gauge(o, 'probe_dns_authority_rrs'), 0);
    assert.equal(gauge(o, 'probe_dns_additional_rrs'), 0);
    assert.equal(gauge(o, 'probe_dns_query_succeeded'), 1);
    assert.equal(gauge(o, 'probe_dns_lookup_time_seconds'), 0);
    assert.ok(zoo.queries.udp >= 1);
  });

  it('MX over TCP: success with glue in additional, connect > 0', async () => {
    const before = zoo.queries.tcp;
    const o = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: MX\ntransport_protocol: tcp');
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(zoo.queries.tcp, before + 1);
    assert.ok(phase(o, 'connect') > 0n);
    assert.equal(gauge(o, 'probe_dns_answer_rrs'), 1);
    assert.equal(gauge(o, 'probe_dns_additional_rrs'), 1);
  });

  it('validate_*_rrs on the RR text form (blackbox semantics)', async () => {
    const ok = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: AAAA\nvalidate_answer_rrs:\n  fail_if_none_matches_regexp: ["IN\\tAAAA\\t2001:db8::1$"]');
    assert.equal(ok.success, true, ok.failureMessage);
    const notAll = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: A\nvalidate_answer_rrs:\n  fail_if_not_matches_regexp: ["192\\\\.0\\\\.2\\\\.1$"]');
    assert.equal(notAll.failureCode, FailureCodes.DNS_ANSWER_REGEX);
    assert.match(notAll.failureMessage, /192\.0\.2\.2/);
    const matches = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: TXT\nvalidate_answer_rrs:\n  fail_if_matches_regexp: ["spf1"]');
    assert.equal(matches.failureCode, FailureCodes.DNS_ANSWER_REGEX);
    const none = await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: MX\nvalidate_additional_rrs:\n  fail_if_none_matches_regexp: ["192\\\\.0\\\\.2\\\\.99"]');
    assert.equal(none.failureCode, FailureCodes.DNS_ANSWER_REGEX);
    assert.match(none.failureMessage, /additional/);
    const authority = await probe(zoo.target, 'query_name: nope.zoo.test\nvalid_rcodes: [NXDOMAIN]\nvalidate_authority_rrs:\n  fail_if_none_matches_regexp: ["SOA\\tns1\\\\.zoo\\\\.test\\\\. .* 2024010101 "]');
    assert.equal(authority.success, true, authority.failureMessage);
    assert.equal(gauge(authority, 'probe_dns_authority_rrs'), 1);
  });

  it('validate_*_rrs rule by rule exactly as blackbox 0.23 validRRs (answers 192.0.2.1 and 192.0.2.2)', async () => {
    const A = 'query_name: ok.zoo.test\nquery_type: A\n';
    const cases: [string, boolean][] = [
      // fail_if_matches_regexp: fails when any record matches any regexp.
      ['validate_answer_rrs: {fail_if_matches_regexp: ["192\\\\.0\\\\.2\\\\.2$"]}', false],
      ['validate_answer_rrs: {fail_if_matches_regexp: ["198\\\\.51"]}', true],
      // fail_if_all_match_regexp: blackbox fails when NOT every record matches every regexp.
      ['validate_answer_rrs: {fail_if_all_match_regexp: ["\\tIN\\tA\\t192\\\\.0\\\\.2\\\\."]}', true],
      ['validate_answer_rrs: {fail_if_all_match_regexp: ["\\t192\\\\.0\\\\.2\\\\.1$"]}', false],
      ['validate_answer_rrs: {fail_if_all_match_regexp: ["^ok\\\\.", "192\\\\.0\\\\.2\\\\.[12]$"]}', true],
      ['validate_answer_rrs: {fail_if_all_match_regexp: ["^ok\\\\.", "\\\\.1$"]}', false],
      // fail_if_not_matches_regexp: fails when some record misses some regexp.
      ['validate_answer_rrs: {fail_if_not_matches_regexp: ["^ok\\\\.zoo\\\\.test\\\\.\\t300\\tIN\\tA\\t192\\\\.0\\\\.2\\\\.[12]$"]}', true],
      ['validate_answer_rrs: {fail_if_not_matches_regexp: ["^ok\\\\.", "\\\\.1$"]}', false],
      // fail_if_none_matches_regexp: fails when no record matches any regexp.
      ['validate_answer_rrs: {fail_if_none_matches_regexp: ["198\\\\.51", "\\\\.2$"]}', true],
      ['validate_answer_rrs: {fail_if_none_matches_regexp: ["198\\\\.51"]}', false],
      // An empty section (authority): not_matches and none_matches fail, all_match and matches pass.
      ['validate_authority_rrs: {fail_if_not_matches_regexp: ["."]}', false],
      ['validate_authority_rrs: {fail_if_none_matches_regexp: ["."]}', false],
      ['validate_authority_rrs: {fail_if_all_match_regexp: ["x"]}', true],
      ['validate_authority_rrs: {fail_if_matches_regexp: ["."]}', true],
    ];
    for (const [rule, success] of cases) {
      const o = await probe(zoo.target, A + rule);
      assert.equal(o.success, success, `${rule}: ${o.failureMessage}`);
      if (!success) assert.equal(o.failureCode, FailureCodes.DNS_ANSWER_REGEX, rule);
    }
    const notAll = await probe(zoo.target, `${A}validate_answer_rrs: {fail_if_all_match_regexp: ["\\\\.1$"]}`);
    assert.match(notAll.failureMessage, /not every answer record matches fail_if_all_match_regexp: ".*192\.0\.2\.2" does not match/);
  });

  it('SOA query: probe_dns_serial from the answer, 0 when the answer has no SOA', async () => {
    const o = await probe(zoo.target, 'query_name: zoo.test\nquery_type: SOA\ntransport_protocol: tcp');
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_dns_serial'), 2024010101);
    const nx = await probe(zoo.target, 'query_name: nope.zoo.test\nquery_type: SOA');
    assert.equal(nx.failureCode, FailureCodes.DNS_NXDOMAIN);
    assert.equal(gauge(nx, 'probe_dns_serial'), 0);
    assert.equal(gauge(await probe(zoo.target, 'query_name: ok.zoo.test\nquery_type: A'), 'probe_dns_serial'), undefined);
  });

  it('NXDOMAIN → dns_nxdomain (query still succeeded), valid_rcodes makes it a success', async () => {
    const o = await probe(zoo.target, 'query_name: nope.zoo.test\nquery_type: A');
    assert.equal(o.failureCode, FailureCodes.DNS_NXDOMAIN);
    assert.match(o.failureMessage, /NXDOMAIN/);
    assert.equal(gauge(o, 'probe_dns_query_succeeded'), 1);
    const ok = await probe(zoo.target, 'query_name: nope.zoo.test\nvalid_rcodes: [NOERROR, NXDOMAIN]');
    assert.equal(ok.success, true);
  });

  it('SERVFAIL and REFUSED → dns_rcode', async () => {
    const o = await probe(zoo.target, 'query_name: servfail.zoo.test\nquery_type: A');
    assert.equal(o.failureCode, FailureCodes.DNS_RCODE);
    assert.match(o.failureMessage, /SERVFAIL/);
    assert.equal((await probe(zoo.target, 'query_name: refused.zoo.test\ntransport_protocol: tcp')).failureCode, FailureCodes.DNS_RCODE);
  });

  it('no answer → dns_timeout promptly (UDP and TCP), query_succeeded 0', async () => {
    for (const transport of ['udp', 'tcp']) {
      const start = clock.monoNs();
      const o = await probe(zoo.target, `query_name: slow.zoo.test\ntransport_protocol: ${transport}`, 200);
      const took = Number(clock.monoNs() - start) / 1e6;
      assert.equal(o.failureCode, FailureCodes.DNS_TIMEOUT, transport);
      assert.equal(gauge(o, 'probe_dns_query_succeeded'), 0);
      for (const n of ['probe_dns_answer_rrs', 'probe_dns_authority_rrs', 'probe_dns_additional_rrs']) assert.equal(gauge(o, n), 0, `${n} answered as 0 without a reply, like blackbox`);
      assert.ok(took >= 190 && took < 1_500, `${transport} took ${took} ms`);
      const sum = o.phases.reduce((s, p) => s + p.durationNs, 0n);
      assert.ok(Number(sum) / 1e6 >= 190, `phases cover the wait (${sum})`);
    }
  });

  it('closed port: UDP → connect_refused (ICMP port unreachable), TCP → connect_refused', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const udp = await probe(`127.0.0.1:${port}`, 'query_name: ok.zoo.test');
    assert.equal(udp.failureCode, FailureCodes.CONNECT_REFUSED);
    assert.equal(gauge(udp, 'probe_dns_answer_rrs'), 0);
    assert.equal((await probe(`127.0.0.1:${port}`, 'query_name: ok.zoo.test\ntransport_protocol: tcp')).failureCode, FailureCodes.CONNECT_REFUSED);
  });

  it('server given by name: resolved (preferred_ip_protocol), resolve phase and lookup gauge > 0', async () => {
    const resolveAll: ResolveAllFn = async () => {
      await new Promise((r) => setTimeout(r, 3));
      return [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }];
    };
    const o = await probe(`dns.zoo.test:${zoo.port}`, 'query_name: ok.zoo.test\nquery_type: A\npreferred_ip_protocol: ip4', 2_000, resolveAll);
    assert.equal(o.success, true, o.failureMessage);
    assert.ok(phase(o, 'resolve') >= 2_000_000n);
    assert.ok((gauge(o, 'probe_dns_lookup_time_seconds') ?? 0) >= 0.002);
    const nx: ResolveAllFn = async () => {
      throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    assert.equal((await probe('nope.invalid', 'query_name: a', 2_000, nx)).failureCode, FailureCodes.DNS_NXDOMAIN);
  });

  it('bad target → invalid_target; bad config → errors with the key path', async () => {
    assert.equal((await probe('not a server', 'query_name: a')).failureCode, FailureCodes.INVALID_TARGET);
    assert.throws(() => options('query_name: a\nquery_typo: A'), /dns\.query_typo: unknown key/);
    assert.throws(() => options('query_name: a\nquery_type: BOGUS'), /dns\.query_type/);
    assert.throws(() => options('query_name: a\nvalidate_answer_rrs:\n  fail_if_matches_regexp: ["("]'), /dns\.validate_answer_rrs\.fail_if_matches_regexp\[0\]: invalid regular expression/);
    assert.throws(() => options('query_name: a\ndns_over_tls: true'), /dns\.dns_over_tls: dns_over_tls needs transport_protocol: tcp/);
    assert.throws(() => options('query_type: A'), /dns\.query_name: required/);
    const d = options('query_name: a');
    assert.equal(d.query_type, 'ANY');
    assert.deepEqual(d.valid_rcodes, ['NOERROR']);
    assert.equal(d.recursion_desired, true);
  });
});
