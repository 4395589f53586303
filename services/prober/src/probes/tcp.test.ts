import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import { expandTemplate, TCP_PHASES, tcpProbe, tcpProbeSchema, TcpProbeOptions } from './tcp';
import { FailureCodes } from './failure';
import { ProbeOutcome } from './types';
import { makeZooCerts, startTcpZoo, TcpZoo, ZooCerts } from '../testing/zoo';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };
const options = (yaml: string): TcpProbeOptions => loadConfig(obj({ tcp: tcpProbeSchema }), { text: `tcp:\n${yaml.replace(/^/gm, '  ')}`, env: {} }).tcp;
async function probe(target: string, yaml = '{}', timeoutMs = 2_000): Promise<ProbeOutcome> {
  return tcpProbe(options(yaml)).run({ id: 't', url: target, module: 'tcp', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}
const phase = (o: ProbeOutcome, name: string): bigint => o.phases.find((p) => p.name === name)!.durationNs;
const gauge = (o: ProbeOutcome, name: string) => o.gauges.find((g) => g.name === name);

describe('tcp probe (zoo TCP servers)', () => {
  let certs: ZooCerts;
  let zoo: TcpZoo;
  let trust = '';
  before(async () => {
    certs = makeZooCerts();
    zoo = await startTcpZoo(certs);
    trust = `tls_config:\n  ca_file: ${certs.caFile}`;
  });
  after(async () => {
    await zoo.close();
    certs.cleanup();
  });

  it('connect only: success, phases resolve=0 connect>0 tls=0', async () => {
    const o = await probe(zoo.echo, '{}');
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(o.phases.map((p) => p.name), [...TCP_PHASES]);
    assert.equal(phase(o, 'resolve'), 0n);
    assert.ok(phase(o, 'connect') > 0n);
    assert.equal(phase(o, 'tls'), 0n);
  });

  it('refused → connect_refused, reset after accept → reset, silent server → timeout', async () => {
    assert.equal((await probe(zoo.refused)).failureCode, FailureCodes.CONNECT_REFUSED);
    const reset = await probe(zoo.reset, 'query_response:\n  - expect: "^220"');
    assert.equal(reset.failureCode, FailureCodes.RESET, reset.failureMessage);
    const start = clock.monoNs();
    const slow = await probe(zoo.silent, 'query_response:\n  - expect: "^220"', 200);
    assert.equal(slow.failureCode, FailureCodes.TIMEOUT, slow.failureMessage);
    assert.ok(Number(clock.monoNs() - start) / 1e6 < 1_500);
    assert.ok(phase(slow, 'processing') >= 150_000_000n, 'the wait is in processing');
  });

  it('banner dialogue with captures in send and labels (probe_expect_info)', async () => {
    const o = await probe(zoo.banner, [
      'query_response:',
      '  - expect: "^220 (?<host>[^ ]+) (ESMTP) ready$"',
      '    send: "EHLO ${2}-prober"',
      '    labels:',
      '      - { name: server, value: "${host}" }',
      '      - { name: proto, value: "$2" }',
      '  - expect: "^250-zoo.test hello (.*)$"',
      '    labels: [{ name: echoed, value: "${1}" }]',
      '  - expect: "^250 OK"',
      '    send: QUIT',
      '  - expect: "^221"',
    ].join('\n'));
    assert.equal(o.success, true, o.failureMessage);
    const infos = o.gauges.filter((g) => g.name === 'probe_expect_info').map((g) => g.labels);
    assert.deepEqual(infos, [{ server: 'zoo.test', proto: 'ESMTP' }, { echoed: 'ESMTP-prober' }]);
    assert.equal(gauge(o, 'probe_failed_due_to_regex')?.value, 0);
    assert.ok(phase(o, 'processing') > 0n);
  });

  it('expect not met → tcp_expect (probe_failed_due_to_regex 1); expect_bytes checked exactly', async () => {
    const o = await probe(zoo.banner, 'query_response:\n  - expect: "^220"\n    send: QUIT\n  - expect: "^250"');
    assert.equal(o.failureCode, FailureCodes.TCP_EXPECT);
    assert.match(o.failureMessage, /query_response\[1\].*221 bye/);
    assert.equal(gauge(o, 'probe_failed_due_to_regex')?.value, 1);
    const bytesOk = await probe(zoo.echo, 'query_response:\n  - send: "PING"\n  - expect_bytes: "PING\\n"');
    assert.equal(bytesOk.success, true, bytesOk.failureMessage);
    const bytesBad = await probe(zoo.echo, 'query_response:\n  - send: "PING"\n  - expect_bytes: "PONG"');
    assert.equal(bytesBad.failureCode, FailureCodes.TCP_EXPECT);
    assert.match(bytesBad.failureMessage, /PING/);
  });

  it('STARTTLS: upgrade mid-dialogue, TLS gauges, EHLO over TLS', async () => {
    const qr = ['query_response:', '  - expect: "^220"', '    send: EHLO prober', '  - expect: "^250-STARTTLS"', '  - expect: "^250 OK"', '    send: STARTTLS', '  - expect: "^220 go ahead"', '    starttls: true', '  - send: EHLO again', '  - expect: "^250 zoo.test SECURE"'].join('\n');
    const o = await probe(zoo.banner, `${qr}\n${trust}`);
    assert.equal(o.success, true, o.failureMessage);
    assert.ok(gauge(o, 'probe_tls_version_info')?.labels?.version?.startsWith('TLS 1.'));
    const expiry = gauge(o, 'probe_ssl_earliest_cert_expiry')?.value ?? 0;
    assert.ok(expiry > Date.now() / 1000 && expiry < Date.now() / 1000 + 4 * 86400, `expiry ${expiry}`);
    const untrusted = await probe(zoo.banner, qr);
    assert.equal(untrusted.failureCode, FailureCodes.STARTTLS);
    assert.match(untrusted.failureMessage, /tls_untrusted/);
  });

  it('tls: true: handshake phase > 0 and success; untrusted / wrong name → tls_* codes', async () => {
    const o = await probe(zoo.tlsBanner, `tls: true\n${trust}\nquery_response:\n  - expect: "^220 .*\\\\(tls\\\\)$"`);
    assert.equal(o.success, true, o.failureMessage);
    assert.ok(phase(o, 'tls') > 0n);
    assert.ok(gauge(o, 'probe_tls_cipher_info'));
    assert.equal((await probe(zoo.tlsBanner, 'tls: true')).failureCode, FailureCodes.TLS_UNTRUSTED);
    const wrong = await probe(zoo.tlsBanner, `tls: true\n${trust}\n  server_name: other.test`);
    assert.equal(wrong.failureCode, FailureCodes.TLS_CERT_HOSTNAME, wrong.failureMessage);
    const byName = await probe(zoo.tlsBanner, `tls: true\n${trust}\n  server_name: zoo.test`);
    assert.equal(byName.success, true, byName.failureMessage);
  });

  it('source_ip_address binds the local side; invalid target; config errors name the key', async () => {
    assert.equal((await probe(zoo.echo, 'source_ip_address: 127.0.0.1')).success, true);
    assert.equal((await probe('no-port-here')).failureCode, FailureCodes.INVALID_TARGET);
    assert.throws(() => options('query_response:\n  - expect: "("'), /tcp\.query_response\[0\]\.expect: invalid regular expression/);
    assert.throws(() => options('query_response:\n  - sned: x'), /tcp\.query_response\[0\]\.sned: unknown key/);
  });

  it('expandTemplate follows Go Regexp.Expand', () => {
    const m = /(?<a>x+)(y)/.exec('xxy')!;
    assert.equal(expandTemplate('$1-${2}-${a}-$a-$$-${9}', m), 'xx-y-xx-xx-$-');
  });
});

describe('Go regexp syntax (blackbox configs)', () => {
  it('compiles what Go accepts: ^+OK, (?i), (?P<name>)', async () => {
    const { goRegExp } = await import('./go-regexp');
    // In Go `^+` is a repeated anchor: the pattern means ^OK (so blackbox's pop3s example never matches "+OK").
    assert.equal(goRegExp('^+OK').test('OK ready'), true);
    assert.equal(goRegExp('^+OK').test('+OK ready'), false);
    assert.equal(goRegExp('(?i)^ssh-2').test('SSH-2.0-OpenSSH'), true);
    assert.equal(goRegExp('(?P<v>\\d+)').exec('v42')?.groups?.v, '42');
    assert.equal(goRegExp('a\\^+').test('a^^'), true, 'an escaped ^ keeps its quantifier');
  });
});
