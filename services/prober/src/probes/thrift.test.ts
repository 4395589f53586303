import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import { THRIFT_PHASES, thriftProbe, thriftProbeSchema, ThriftProbeOptions } from './thrift';
import { decodeThriftMessage, encodeThriftMessage, MessageType, TType } from './thrift-wire';
import { FailureCodes } from './failure';
import { ProbeOutcome } from './types';
import { makeZooCerts, startTcpZoo, startThriftZoo, TcpZoo, ThriftZoo } from '../testing/zoo';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };
const options = (yaml: string): ThriftProbeOptions => loadConfig(obj({ thrift: thriftProbeSchema }), { text: `thrift:\n${yaml.replace(/^/gm, '  ')}`, env: {} }).thrift;
async function probe(target: string, yaml: string, timeoutMs = 2_000): Promise<ProbeOutcome> {
  return thriftProbe(options(yaml)).run({ id: 't', url: target, module: 'thrift', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}

describe('thrift wire', () => {
  it('both protocols round-trip a call with all simple types, big field-id gaps and bools', () => {
    for (const p of ['binary', 'compact'] as const) {
      const fields = [
        { id: 1, type: TType.BOOL, value: true },
        { id: 2, type: TType.I32, value: -123456 },
        { id: 40, type: TType.I64, value: -(2n ** 40n) },
        { id: 41, type: TType.DOUBLE, value: 1.5 },
        { id: 42, type: TType.STRING, value: 'héllo' },
        { id: 43, type: TType.BOOL, value: false },
        { id: 44, type: TType.STRUCT, value: [{ id: 1, type: TType.STRING, value: 'inner' }] },
      ];
      const buf = encodeThriftMessage(p, { name: 'svc:m', type: MessageType.CALL, seqid: 77, fields });
      const { message, used } = decodeThriftMessage(p, buf);
      assert.equal(used, buf.length, p);
      assert.deepEqual(message, { name: 'svc:m', type: MessageType.CALL, seqid: 77, fields }, p);
    }
  });
});

describe('thrift probe (zoo Thrift server)', () => {
  let zoo: ThriftZoo;
  let tcp: TcpZoo;
  const certs = makeZooCerts();
  before(async () => {
    [zoo, tcp] = await Promise.all([startThriftZoo(), startTcpZoo(certs)]);
  });
  after(async () => {
    await Promise.all([zoo.close(), tcp.close()]);
    certs.cleanup();
  });

  it('every protocol × transport: a returning method succeeds', async () => {
    for (const protocol of ['binary', 'compact']) {
      for (const transport of ['framed', 'buffered']) {
        for (const method of ['ping', 'getName']) {
          const o = await probe(zoo.target, `method: ${method}\nprotocol: ${protocol}\ntransport: ${transport}`);
          assert.equal(o.success, true, `${protocol}/${transport} ${method}: ${o.failureMessage}`);
          assert.deepEqual(o.phases.map((p) => p.name), [...THRIFT_PHASES]);
          assert.ok(o.phases[1]!.durationNs > 0n && o.phases[2]!.durationNs > 0n);
        }
      }
    }
    assert.ok(zoo.calls.includes('compact/buffered getName') && zoo.calls.includes('binary/framed ping'), zoo.calls.join(', '));
  });

  it('arguments and multiplexed service names are sent', async () => {
    const o = await probe(zoo.target, 'method: echo\nservice: Zoo\nprotocol: compact\nargs:\n  - { id: 1, type: string, value: hi }');
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(zoo.calls.at(-1), 'compact/framed Zoo:echo');
    assert.throws(() => options('method: x\nargs:\n  - { id: 1, type: i32, value: abc }'), /thrift\.args\[0\]\.value: "abc" is not a valid i32/);
  });

  it('declared exception and T_EXCEPTION → thrift_exception; unknown method too', async () => {
    for (const protocol of ['binary', 'compact']) {
      const declared = await probe(zoo.target, `method: fail\nprotocol: ${protocol}`);
      assert.equal(declared.failureCode, FailureCodes.THRIFT_EXCEPTION);
      assert.match(declared.failureMessage, /declared exception field 1: zoo failure on purpose/);
      const app = await probe(zoo.target, `method: crash\nprotocol: ${protocol}\ntransport: buffered`);
      assert.equal(app.failureCode, FailureCodes.THRIFT_EXCEPTION);
      assert.match(app.failureMessage, /TApplicationException \(type 6\): internal error/);
    }
    assert.match((await probe(zoo.target, 'method: nope')).failureMessage, /Invalid method name/);
  });

  it('no reply → timeout; refused → connect_refused; not Thrift → thrift_protocol', async () => {
    const start = clock.monoNs();
    const o = await probe(zoo.target, 'method: hang', 200);
    assert.equal(o.failureCode, FailureCodes.TIMEOUT);
    assert.ok(Number(clock.monoNs() - start) / 1e6 < 1_500);
    assert.equal((await probe(tcp.refused, 'method: ping')).failureCode, FailureCodes.CONNECT_REFUSED);
    const banner = await probe(tcp.banner, 'method: ping\ntransport: buffered');
    assert.equal(banner.failureCode, FailureCodes.THRIFT_PROTOCOL, banner.failureMessage);
    assert.equal((await probe(tcp.reset, 'method: ping')).failureCode, FailureCodes.RESET);
  });
});
