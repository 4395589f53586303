import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import * as http2 from 'node:http2';
import { AddressInfo } from 'node:net';
import { GRPC_PHASES, grpcProbe, grpcProbeSchema, GrpcProbeOptions } from './grpc';
import { grpcStatusOfHttp } from './grpc-health';
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
const labelsOf = (o: ProbeOutcome, name: string): Record<string, string>[] => o.gauges.filter((g) => g.name === name).map((g) => ({ ...g.labels }));
const ALL_ZERO = { UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 };

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
    assert.equal(gauge(o, 'probe_ssl_earliest_cert_expiry'), 0, 'answered without TLS too, as 0, like blackbox');
    assert.deepEqual(labelsOf(o, 'probe_tls_version_info'), []);
    assert.deepEqual(o.phases.map((p) => p.name), [...GRPC_PHASES]);
    assert.ok(o.phases[1]!.durationNs > 0n);
    assert.equal(plain.checks.get('zoo.Serving'), 1);
    assert.equal(plain.lastMetadata['x-probe'], 'probemesh');
    assert.equal((await probe(plain.target)).success, true, 'empty service = server health');
    const forbidden = await probe(plain.target, 'metadata:\n  connection: close');
    assert.equal(forbidden.failureCode, FailureCodes.ERROR, 'a header HTTP/2 forbids fails the probe, never throws');
    assert.match(forbidden.failureMessage, /request headers/);
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
    assert.deepEqual(servingGauges(o), ALL_ZERO, 'the four serving_status series, all 0, like blackbox');
    assert.equal(gauge(o, 'probe_ssl_earliest_cert_expiry'), 0);
  });

  it('a plain HTTP/2 server (no gRPC): HTTP 404 → UNIMPLEMENTED (12), grpc_error; the HTTP→gRPC mapping', async () => {
    const server = http2.createServer((_req, res) => {
      res.writeHead(404);
      res.end('not here');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const o = await probe(`127.0.0.1:${(server.address() as AddressInfo).port}`);
      assert.equal(o.failureCode, FailureCodes.GRPC_ERROR, o.failureMessage);
      assert.equal(gauge(o, 'probe_grpc_status_code'), 12);
      assert.match(o.failureMessage, /UNIMPLEMENTED: HTTP status 404/);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.deepEqual([400, 401, 403, 404, 429, 502, 503, 504, 500].map(grpcStatusOfHttp), [13, 16, 7, 12, 14, 14, 14, 14, 2]);
  });

  it('refused port → connect_refused; not a gRPC server → grpc_error; silent → timeout', async () => {
    const refused = await probe(tcp.refused);
    assert.equal(refused.failureCode, FailureCodes.CONNECT_REFUSED);
    assert.equal(gauge(refused, 'probe_grpc_status_code'), 14, 'UNAVAILABLE, like grpc-go');
    assert.deepEqual(servingGauges(refused), ALL_ZERO);
    assert.equal(gauge(refused, 'probe_grpc_ssl'), 0);
    assert.ok(refused.phases[1]!.durationNs > 0n);
    const echo = await probe(tcp.banner);
    assert.ok(echo.failureCode === FailureCodes.GRPC_ERROR || echo.failureCode === FailureCodes.RESET, `${echo.failureCode}: ${echo.failureMessage}`);
    const start = clock.monoNs();
    const slow = await probe(tcp.silent, '{}', 300);
    assert.equal(slow.failureCode, FailureCodes.TIMEOUT, slow.failureMessage);
    assert.equal(gauge(slow, 'probe_grpc_status_code'), 4, 'DEADLINE_EXCEEDED');
    assert.ok(Number(clock.monoNs() - start) / 1e6 < 2_000);
  });

  it('TLS: trusted CA succeeds (tls: true or https:// target), untrusted → tls_untrusted, plaintext to TLS fails', async () => {
    const trusted = `tls: true\ntls_config:\n  ca_file: ${certs.caFile}`;
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => void warnings.push(`${w.code ?? ''} ${w.message}`);
    process.on('warning', onWarning);
    const o = await probe(secure.target, `service: zoo.Serving\n${trusted}`);
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    assert.deepEqual(warnings, [], 'no DEP0123 (no IP literal as TLS servername)');
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_grpc_ssl'), 1);
    // The TLS details blackbox answers on grpc (and no probe_ssl_last_chain_expiry_timestamp_seconds: blackbox has none on grpc).
    assert.deepEqual(labelsOf(o, 'probe_tls_version_info'), [{ version: 'TLS 1.3' }]);
    const [chain] = labelsOf(o, 'probe_ssl_last_chain_info');
    assert.equal(chain?.subject, 'CN=zoo.test');
    assert.equal(chain?.issuer, 'CN=probemesh zoo CA');
    assert.equal(chain?.subjectalternative, 'zoo.test,localhost');
    assert.match(chain?.fingerprint_sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.ok((gauge(o, 'probe_ssl_earliest_cert_expiry') ?? 0) > Date.now() / 1000);
    assert.equal(gauge(o, 'probe_ssl_last_chain_expiry_timestamp_seconds'), undefined);
    assert.deepEqual(servingGauges(o), { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 });
    const viaUrl = await probe(`https://${secure.target}`, `tls_config:\n  ca_file: ${certs.caFile}`);
    assert.equal(viaUrl.success, true, viaUrl.failureMessage);
    const named = await probe(secure.target, `${trusted}\n  server_name: zoo.test`);
    assert.equal(named.success, true, named.failureMessage);
    const wrongName = await probe(secure.target, `${trusted}\n  server_name: other.test`);
    assert.equal(wrongName.failureCode, FailureCodes.TLS_CERT_HOSTNAME, wrongName.failureMessage);
    const untrusted = await probe(secure.target, 'tls: true');
    assert.equal(untrusted.failureCode, FailureCodes.TLS_UNTRUSTED, untrusted.failureMessage);
    assert.equal(gauge(untrusted, 'probe_grpc_ssl'), 0, 'no verified TLS connection');
    assert.equal(gauge(untrusted, 'probe_grpc_status_code'), 14);
    assert.deepEqual(servingGauges(untrusted), ALL_ZERO);
    assert.ok((gauge(untrusted, 'probe_ssl_earliest_cert_expiry') ?? 0) > Date.now() / 1000, 'the certificate expiry is kept when verification fails (issue 3)');
    const skip = await probe(secure.target, 'tls: true\ntls_config:\n  insecure_skip_verify: true');
    assert.equal(skip.success, true, skip.failureMessage);
    const plainToTls = await probe(secure.target, '{}');
    assert.equal(plainToTls.success, false);
    assert.equal(gauge(plainToTls, 'probe_grpc_status_code'), 14, plainToTls.failureMessage);
    assert.equal((await probe(tcp.tlsBanner, trusted)).success, false, 'a TLS server that is no HTTP/2 server');
  });
});
