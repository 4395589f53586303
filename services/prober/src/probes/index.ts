/**
 * The probe protocols this prober knows: `prober:` value → factory. A new protocol is
 * one file in this directory plus one line here.
 */
import { Schema } from '@probemesh/common';
import { httpProbe, httpProbeSchema, LookupFn } from './http';
import { dnsProbe, dnsProbeSchema, DnsProbeOptions } from './dns';
import { grpcProbe, grpcProbeSchema, GrpcProbeOptions } from './grpc';
import { icmpProbe, icmpProbeSchema, IcmpProbeOptions } from './icmp';
import { tcpProbe, tcpProbeSchema, TcpProbeOptions } from './tcp';
import { thriftProbe, thriftProbeSchema, ThriftProbeOptions } from './thrift';
import { fromLookup } from './target-addr';
import { Probe } from './types';

/** Dependencies a probe factory may take (injected in tests). */
export interface ProbeDeps {
  /** Host name resolver (http and later tcp/tls). */
  lookup?: LookupFn;
}

/** A probe protocol: its options schema and its factory. */
export interface ProbeKind<O> {
  /** Schema of the module's protocol block (e.g. blackbox `http:`). */
  readonly schema: Schema<O>;
  /** Builds a probe from parsed options. */
  create(options: O, deps: ProbeDeps): Probe;
}

/** Known protocols by blackbox `prober:` name. */
export const PROBE_KINDS = {
  http: { schema: httpProbeSchema, create: (o, d) => httpProbe(o, d) } as ProbeKind<import('./http').HttpProbeOptions>,
  dns: { schema: dnsProbeSchema, create: (o, d) => dnsProbe(o, { resolveAll: fromLookup(d.lookup) }) } as ProbeKind<DnsProbeOptions>,
  tcp: { schema: tcpProbeSchema, create: (o, d) => tcpProbe(o, { resolveAll: fromLookup(d.lookup) }) } as ProbeKind<TcpProbeOptions>,
  icmp: { schema: icmpProbeSchema, create: (o, d) => icmpProbe(o, { resolveAll: fromLookup(d.lookup) }) } as ProbeKind<IcmpProbeOptions>,
  grpc: { schema: grpcProbeSchema, create: (o, d) => grpcProbe(o, { resolveAll: fromLookup(d.lookup) }) } as ProbeKind<GrpcProbeOptions>,
  thrift: { schema: thriftProbeSchema, create: (o, d) => thriftProbe(o, { resolveAll: fromLookup(d.lookup) }) } as ProbeKind<ThriftProbeOptions>,
} as const;

/** A protocol name of {@link PROBE_KINDS}. */
export type ProbeKindName = keyof typeof PROBE_KINDS;

export * from './types';
export * from './failure';
export { httpProbe, httpProbeSchema, HTTP_PHASES, HTTP_VERSION_NAMES, ipAddrHash, MAX_REDIRECTS, systemLookup } from './http';
export type { HttpProbeOptions, HttpProbeDeps, LookupFn } from './http';
export { tlsConfigSchema, prepareTls, tlsConnectOptions, verifyPeer, tlsGauges, skipNodeIdentityCopy, peerLeaf, TLS_VERSIONS } from './tls-info';
export type { TlsConfig, PreparedTls, TlsFailure } from './tls-info';
