import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import { GRPC_PHASES, grpcProbe, grpcProbeSchema, GrpcProbeOptions } from './grpc';
import { FailureCodes } from './failure';
import { ProbeOutcome } from './types';
import { GrpcZoo, makeZooCerts, startGrpcZoo, startTcpZoo, TcpZoo, ZooCerts } from '../testing/zoo';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };
const options = (yaml: string): GrpcProbeOptions => loadConfig(obj({ grpc: grpcProbeSchema }), { text: `grpc:\n${yaml.replace(/^/gm, '  ')}`, env: {} }).grpc;
async function probe(target: string, yaml = '{}', timeoutMs = 3_000): Promise<ProbeOutcome> {
  return grpcProbe(options(yaml)).run({ id: 't', url: target, module: 'grpc', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}
const servingGauges = (o: ProbeOutcome): Record<string, number> =>
  Object.fromEntries(o.gauges.filter((g) => g.name === 'probe_grpc_healthcheck_response').map((g) => [g.labels!.serving_status!, g.value]));
const gauge = (o: ProbeOutcome, name: string): number | undefined => o.gauges.find((g) => g.name === name)?.value;

describe('grpc probe (zoo health server)', () => {
  let certs: ZooCerts;
  let plain: GrpcZoo;
  let secure: GrpcZoo;
  let tcp: TcpZoo;
  before(async () => {
    certs = makeZooCerts();
    [plain, secure, tcp] = await Promise.all([startGrpcZoo(), startGrpcZoo(certs), startTcpZoo(certs)]);
  });
  after(async () => {
    await Promise.all([plain.close(), secure.close(), tcp.close()]);
    certs.cleanup();
  });

  it('SERVING: success, serving_status gauges like blackbox, status code 0, metadata sent', async () => {
    const o = await probe(plain.target, 'service: zoo.Serving\nmetadata:\n  x-probe: probemesh');
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(servingGauges(o), { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 });
    assert.equal(gauge(o, 'probe_grpc_status_code'), 0);
    assert.equal(gauge(o, 'probe_grpc_ssl'), 0);
    assert.deepEqual(o.phases.map((p) => p.name), [...GRPC_PHASES]);
    assert.ok(o.phases[1]!.durationNs > 0n);
    assert.equal(plain.checks.get('zoo.Serving'), 1);
    assert.equal(plain.lastMetadata['x-probe'], 'probemesh');
    assert.equal((await probe(plain.target)).success, true, 'empty service = server health');
  });

  it('NOT_SERVING → grpc_not_serving; UNKNOWN status → grpc_not_serving', async () => {
    const o = await probe(plain.target, 'service: zoo.NotServing');
    assert.equal(o.failureCode, FailureCodes.GRPC_NOT_SERVING);
    assert.deepEqual(servingGauges(o), { UNKNOWN: 0, SERVING: 0, NOT_SERVING: 1, SERVICE_UNKNOWN: 0 });
    assert.match(o.failureMessage, /NOT_SERVING/);
    assert.equal((await probe(plain.target, 'service: zoo.Unknown')).failureCode, FailureCodes.GRPC_NOT_SERVING);
  });

  it('unknown service → grpc_unknown_service with status code NOT_FOUND (5)', async () => {
    const o = await probe(plain.target, 'service: no.such.Service');
    assert.equal(o.failureCode, FailureCodes.GRPC_UNKNOWN_SERVICE);
    assert.equal(gauge(o, 'probe_grpc_status_code'), 5);
    assert.equal(servingGauges(o).SERVING, undefined);
  });

  it('refused port → connect_refused; not a gRPC server → grpc_error; silent → timeout', async () => {
    assert.equal((await probe(tcp.refused)).failureCode, FailureCodes.CONNECT_REFUSED);
    const echo = await probe(tcp.banner);
    assert.ok(echo.failureCode === FailureCodes.GRPC_ERROR || echo.failureCode === FailureCodes.RESET, `${echo.failureCode}: ${echo.failureMessage}`);
    const start = clock.monoNs();
    const slow = await probe(tcp.silent, '{}', 300);
    assert.equal(slow.failureCode, FailureCodes.TIMEOUT, slow.failureMessage);
    assert.ok(Number(clock.monoNs() - start) / 1e6 < 2_000);
  });

  it('TLS: trusted CA succeeds (tls: true or https:// target), untrusted → tls_untrusted, plaintext to TLS fails', async () => {
    const trusted = `tls: true\ntls_config:\n  ca_file: ${certs.caFile}`;
    const o = await probe(secure.target, `service: zoo.Serving\n${trusted}`);
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_grpc_ssl'), 1);
    const viaUrl = await probe(`https://${secure.target}`, `tls_config:\n  ca_file: ${certs.caFile}`);
    assert.equal(viaUrl.success, true, viaUrl.failureMessage);
    const untrusted = await probe(secure.target, 'tls: true');
    assert.equal(untrusted.failureCode, FailureCodes.TLS_UNTRUSTED, untrusted.failureMessage);
    const skip = await probe(secure.target, 'tls: true\ntls_config:\n  insecure_skip_verify: true');
    assert.equal(skip.success, true, skip.failureMessage);
    assert.equal((await probe(secure.target, '{}')).success, false);
  });
});
