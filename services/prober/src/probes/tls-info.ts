/**
 * TLS for every probe that speaks it (http now, tcp/grpc later): the blackbox
 * `tls_config` block, the client options built from it, our own certificate
 * verification and the TLS gauges (blackbox names).
 *
 * The handshake always runs with `rejectUnauthorized: false` and the probe verifies the
 * peer itself ({@link verifyPeer}): the probe then still holds the peer certificate when
 * verification fails, so `probe_ssl_earliest_cert_expiry` is reported for an expired
 * certificate too (blackbox drops it then), and the failure has a precise code.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConnectionOptions, createSecureContext, DEFAULT_CIPHERS, PeerCertificate, rootCertificates, SecureContext, SecureVersion, TLSSocket } from 'node:tls';
import { addIssue, bool, Infer, obj, optional, str } from '@probemesh/common';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { GaugeValue } from './types';

/** blackbox `min_version`/`max_version` names → Node's. */
export const TLS_VERSIONS: Readonly<Record<string, SecureVersion>> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const VERSION_NAMES = Object.keys(TLS_VERSIONS);

/** blackbox `tls_config` (prometheus/common TLSConfig; `max_version` is ours, blackbox 0.23 has only `min_version`). */
export const tlsConfigSchema = obj(
  {
    ca_file: optional(str({ nonEmpty: true, doc: 'PEM file of CA certificates trusted instead of the system ones. @default system CAs' })),
    cert_file: optional(str({ nonEmpty: true, doc: 'PEM client certificate (with `key_file`) for mutual TLS. @default none' })),
    key_file: optional(str({ nonEmpty: true, doc: 'PEM private key of `cert_file`. @default none' })),
    server_name: optional(str({ nonEmpty: true, doc: 'Name sent in SNI and checked against the certificate. @default the target host' })),
    insecure_skip_verify: bool({ default: false, doc: 'Accept any server certificate (the TLS gauges are still reported). @default false' }),
    min_version: optional(str({ oneOf: VERSION_NAMES, doc: 'Lowest TLS version offered: TLS10, TLS11, TLS12, TLS13. @default TLS12 (like Go)' })),
    max_version: optional(str({ oneOf: VERSION_NAMES, doc: 'Highest TLS version offered (probemesh extension). @default TLS13' })),
  },
  {
    check(v, path, ctx) {
      const p = (k: string): string => (path ? `${path}.${k}` : k);
      if ((v.cert_file === undefined) !== (v.key_file === undefined)) addIssue(ctx, p(v.cert_file === undefined ? 'cert_file' : 'key_file'), 'cert_file and key_file must be set together');
      if (v.min_version && v.max_version && VERSION_NAMES.indexOf(v.min_version) > VERSION_NAMES.indexOf(v.max_version)) addIssue(ctx, p('min_version'), `must not be above max_version (${v.max_version})`);
    },
  },
);

/** Parsed `tls_config`. */
export type TlsConfig = Infer<typeof tlsConfigSchema>;

/** A `tls_config` with its files read (done once, when the module is built). */
export interface PreparedTls {
  /** The configuration. */
  readonly config: TlsConfig;
  /** The files and versions as `tls.connect` options (ca/cert/key buffers, min/max version). */
  readonly options: Readonly<ConnectionOptions>;
  /**
   * One SecureContext for every connection of the module: building it per connection
   * (what passing `ca` to tls.connect does) re-parses the CA file or copies the system
   * root store each time, which costs more CPU than the handshake itself.
   */
  readonly secureContext: SecureContext;
  /**
   * What is derived from a leaf certificate alone (chain expiry, chain-info labels, name
   * checks), by SHA-256 fingerprint (bounded): a probe then reads the leaf, hashes it and
   * looks it up; the rest is computed once per new leaf.
   */
  readonly leaves: Map<string, LeafInfo>;
  /** `tls.connect` options by host and ALPN list (bounded), see {@link tlsConnectOptions}. */
  readonly connectOptions: Map<string, Readonly<ConnectionOptions>>;
  /** The trust anchors as X509Certificates, parsed on the first new leaf (chain walk). */
  anchors?: readonly X509Certificate[];
}

/** What a leaf certificate gives, computed once per fingerprint. */
export interface LeafInfo {
  /** Earliest notAfter over the chain (seconds), Infinity when unknown. */
  readonly earliestExpiry: number;
  /** probe_ssl_last_chain_info labels. */
  readonly chainInfo: Readonly<Record<string, string>>;
  /** Host-name check results: name → undefined (match) or the mismatch message. */
  readonly names: Map<string, string | undefined>;
}

/**
 * TLS 1.3 suites in Go's order (AES-128-GCM first on CPUs with AES instructions), not
 * OpenSSL's (AES-256-GCM first): a server that takes the client's preference (OpenSSL's
 * default, nginx's `ssl_prefer_server_ciphers off`; Node servers prefer their own unless
 * `honorCipherOrder: false`) then negotiates with us the suite it negotiates with Go's client
 * (blackbox_exporter), so probe_tls_cipher_info shows what blackbox users' connections
 * get and both probers pay for the same handshake. TLS 1.2 keeps Node's list (its first
 * choices are Go's too: ECDHE with AES-128-GCM).
 */
const GO_TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384';
/** Node's `ciphers` takes both lists in one string (TLS 1.3 names start with TLS_). */
const CIPHERS = [GO_TLS13_SUITES, ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_'))].join(':');

/** Reads the files of `cfg`; throws (a configuration error) when one cannot be read. */
export function prepareTls(cfg: TlsConfig): PreparedTls {
  const options: ConnectionOptions = {
    rejectUnauthorized: false,
    ca: cfg.ca_file !== undefined ? readFileSync(cfg.ca_file) : undefined,
    cert: cfg.cert_file !== undefined ? readFileSync(cfg.cert_file) : undefined,
    key: cfg.key_file !== undefined ? readFileSync(cfg.key_file) : undefined,
    minVersion: cfg.min_version !== undefined ? TLS_VERSIONS[cfg.min_version] : undefined,
    maxVersion: cfg.max_version !== undefined ? TLS_VERSIONS[cfg.max_version] : undefined,
    ciphers: CIPHERS,
  };
  return { config: cfg, options, secureContext: createSecureContext(options), leaves: new Map(), connectOptions: new Map() };
}

/** The name checked against the certificate: `server_name`, else the target host. */
export function verifyName(tls: PreparedTls, host: string): string {
  return tls.config.server_name ?? host;
}

/**
 * `tls.connect` options for `host` (SNI only for names, never IP literals), built once per
 * host and ALPN list: the probe's connect then spreads a ready object.
 */
export function tlsConnectOptions(tls: PreparedTls, host: string, alpn?: string[]): Readonly<ConnectionOptions> {
  const key = alpn ? `${host}\n${alpn.join(',')}` : host;
  let o = tls.connectOptions.get(key);
  if (o === undefined) {
    const name = verifyName(tls, host);
    // Node would check the name itself (against "localhost" when SNI is absent); verifyPeer does it.
    // ALPN in wire format once (Node converts a string[] on every connect).
    const ALPNProtocols = alpn ? Buffer.concat(alpn.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)]))) : undefined;
    o = Object.freeze({ secureContext: tls.secureContext, rejectUnauthorized: false, servername: isIP(name) ? undefined : name, ALPNProtocols, checkServerIdentity: () => undefined });
    if (tls.connectOptions.size >= CACHE_MAX) tls.connectOptions.clear();
    tls.connectOptions.set(key, o);
  }
  return o;
}

/** A failed verification: code and message. */
export interface TlsFailure {
  readonly code: FailureCode;
  readonly message: string;
}

/**
 * Verifies a completed handshake like a client with `rejectUnauthorized` would: the
 * chain (OpenSSL's verdict) then the host name (DNS or IP SANs only, no CN fallback, as
 * Go). Undefined = trusted (or skipped).
 */
export function verifyPeer(sock: TLSSocket, tls: PreparedTls, host: string): TlsFailure | undefined {
  if (tls.config.insecure_skip_verify) return undefined;
  if (!sock.authorized) {
    const err = sock.authorizationError as Error | string | null;
    const code = typeof err === 'string' ? err : String((err as { code?: unknown } | null)?.code ?? err?.message ?? '');
    const mapped = failureCodeOf({ code });
    return { code: mapped === FailureCodes.ERROR ? FailureCodes.TLS_UNTRUSTED : mapped, message: `certificate verification failed: ${code}` };
  }
  const name = verifyName(tls, host);
  const leaf = peerLeaf(sock);
  if (!leaf) return { code: FailureCodes.TLS_HANDSHAKE, message: 'the server sent no certificate' };
  const info = leafInfo(leaf, tls);
  let mismatch = info.names.get(name);
  if (!info.names.has(name)) {
    mismatch = nameMismatch(leaf, name);
    if (info.names.size >= 64) info.names.clear();
    info.names.set(name, mismatch);
  }
  return mismatch === undefined ? undefined : { code: FailureCodes.TLS_CERT_HOSTNAME, message: `certificate does not match ${name}: ${mismatch}` };
}

/** Go's VerifyHostname: IP literals against IP SANs, names against DNS SANs (one-label wildcards, no CN). */
function nameMismatch(leaf: X509Certificate, name: string): string | undefined {
  const bare = name.replace(/^\[(.*)\]$/, '$1');
  const ok = isIP(bare) ? leaf.checkIP(bare) !== undefined : leaf.checkHost(name.replace(/\.$/, ''), { subject: 'never', wildcards: true, partialWildcards: false, multiLabelWildcards: false, singleLabelSubdomains: false }) !== undefined;
  return ok ? undefined : `${isIP(bare) ? 'IP' : 'Host'}: ${name} is not in the cert's altnames: ${leaf.subjectAltName ?? '(none)'}`;
}

const CACHE_MAX = 1024;
const LEAF = Symbol('probemesh.peerLeaf');

/**
 * The peer's leaf certificate, read once per socket and kept on it. getPeerX509Certificate
 * wraps OpenSSL's certificate without converting it (getPeerCertificate builds a JS
 * object with every field, three fingerprints and the public key: ~0.1 ms). In Node 20
 * it also takes the certificates out of the socket's peer chain (a second call, or
 * getPeerCertificate, then gets nothing): the chain stays reachable through
 * `issuerCertificate` of the returned certificate, which is what the chain walk uses.
 */
export function peerLeaf(sock: TLSSocket): X509Certificate | undefined {
  const holder = sock as TLSSocket & { [LEAF]?: X509Certificate | null };
  if (holder[LEAF] === undefined) holder[LEAF] = sock.getPeerX509Certificate() ?? null;
  return holder[LEAF] ?? undefined;
}

/** What `leaf` gives, from `tls`'s cache by fingerprint (computed and kept when new). */
function leafInfo(leaf: X509Certificate, tls: PreparedTls | undefined): LeafInfo {
  const fingerprint = leaf.fingerprint256;
  let info = tls?.leaves.get(fingerprint);
  if (info === undefined) {
    info = {
      earliestExpiry: chainEarliestExpiry(leaf, tls),
      chainInfo: Object.freeze({
        fingerprint_sha256: fingerprint.replace(/:/g, '').toLowerCase(),
        subject: goName(leaf.subject),
        issuer: goName(leaf.issuer),
        subjectalternative: dnsNames(leaf.subjectAltName),
      }),
      names: new Map(),
    };
    if (tls) {
      if (tls.leaves.size >= CACHE_MAX) tls.leaves.clear();
      tls.leaves.set(fingerprint, info);
    }
  }
  return info;
}

let systemAnchors: readonly X509Certificate[] | undefined;

/** The trust anchors of `tls` (its CA file, else Node's root store), parsed once. */
function anchorsOf(tls: PreparedTls | undefined): readonly X509Certificate[] {
  if (tls?.anchors) return tls.anchors;
  const parse = (pems: readonly string[]): X509Certificate[] =>
    pems.flatMap((p) => {
      try {
        return [new X509Certificate(p)];
      } catch {
        return [];
      }
    });
  let anchors: readonly X509Certificate[];
  const ca = tls?.options.ca;
  if (ca !== undefined) {
    const text = (Array.isArray(ca) ? ca : [ca]).map((c) => (typeof c === 'string' ? c : Buffer.from(c as Uint8Array).toString('latin1'))).join('\n');
    anchors = parse(text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []);
  } else {
    anchors = systemAnchors ??= parse(rootCertificates);
  }
  if (tls) tls.anchors = anchors;
  return anchors;
}

/**
 * Earliest expiry over the chain a client builds: the leaf, then each certificate's issuer
 * among the certificates the server sent, else among the trust anchors (OpenSSL's order:
 * name/key-id match, then the signature), until a self-issued one or none is found.
 * Runs once per new leaf (leafInfo's cache).
 */
function chainEarliestExpiry(leaf: X509Certificate, tls: PreparedTls | undefined): number {
  const sent: X509Certificate[] = [];
  for (let c = leaf.issuerCertificate; c && sent.length < 16; c = c.issuerCertificate) sent.push(c);
  const issuedBy = (child: X509Certificate, cand: X509Certificate): boolean => {
    try {
      return child.checkIssued(cand) && child.verify(cand.publicKey);
    } catch {
      return false;
    }
  };
  let earliest = Infinity;
  const seen = new Set<string>();
  let c: X509Certificate | undefined = leaf;
  while (c && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    const t = Date.parse(c.validTo) / 1000;
    if (t < earliest) earliest = t;
    if (c.checkIssued(c)) break; // self-issued: the top
    const child: X509Certificate = c;
    c = sent.find((s) => !seen.has(s.fingerprint256) && issuedBy(child, s)) ?? anchorsOf(tls).find((a) => !seen.has(a.fingerprint256) && issuedBy(child, a));
  }
  return earliest;
}

/** DNS SANs, comma-joined, from X509Certificate.subjectAltName ("DNS:a, IP Address:…"). */
function dnsNames(san: string | undefined): string {
  return (san ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4))
    .join(',');
}

/**
 * Go's pkix.Name.String() from X509Certificate's name (OpenSSL's RFC 2253-escaped
 * multi-line form, one RDN per line, " + " inside a multi-valued RDN): RDNs in reverse
 * order, comma-joined ("CN=x,O=y,C=z").
 */
function goName(dn: string): string {
  return dn
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' + ').join('+'))
    .reverse()
    .join(',');
}

const VERSION_LABELS = new Map<string, Readonly<Record<string, string>>>();
const CIPHER_LABELS = new Map<string, Readonly<Record<string, string>>>();
const label = (cache: Map<string, Readonly<Record<string, string>>>, key: string, make: () => Record<string, string>): Readonly<Record<string, string>> => {
  let l = cache.get(key);
  if (l === undefined) cache.set(key, (l = Object.freeze(make())));
  return l;
};

/**
 * blackbox's TLS gauges from a completed handshake: probe_tls_version_info,
 * probe_tls_cipher_info, probe_ssl_earliest_cert_expiry,
 * probe_ssl_last_chain_expiry_timestamp_seconds, probe_ssl_last_chain_info.
 *
 * Node gives one chain (the certificates sent, completed from the trust anchors), so the
 * earliest expiry and the last chain's expiry are computed over that chain; with Go's
 * several verified chains they can differ. The leaf is read once per socket; what it
 * gives (chain walk, labels) is computed once per new leaf when `tls` is given (its
 * cache), so an intermediate replaced under an unchanged leaf is seen late.
 */
export function tlsGauges(sock: TLSSocket, tls?: PreparedTls): GaugeValue[] {
  const out: GaugeValue[] = [];
  const version = sock.getProtocol();
  if (version) out.push({ name: 'probe_tls_version_info', value: 1, labels: label(VERSION_LABELS, version, () => ({ version: version.replace('TLSv', 'TLS ').replace(/^TLS 1$/, 'TLS 1.0') })) });
  const cipher = sock.getCipher();
  if (cipher) {
    const name = cipher.standardName ?? cipher.name;
    out.push({ name: 'probe_tls_cipher_info', value: 1, labels: label(CIPHER_LABELS, name, () => ({ cipher: name })) });
  }
  const leaf = peerLeaf(sock);
  if (!leaf) return out;
  const info = leafInfo(leaf, tls);
  if (Number.isFinite(info.earliestExpiry)) {
    out.push({ name: 'probe_ssl_earliest_cert_expiry', value: info.earliestExpiry });
    out.push({ name: 'probe_ssl_last_chain_expiry_timestamp_seconds', value: info.earliestExpiry });
  }
  out.push({ name: 'probe_ssl_last_chain_info', value: 1, labels: info.chainInfo });
  return out;
}

/**
 * Node's TLS client calls `getPeerCertificate(true)` once after the handshake only to
 * hand it to `checkServerIdentity`, which {@link tlsConnectOptions} replaces with a no-op
 * (verifyPeer checks the name on the X509Certificate). That copy converts the whole chain
 * to JS objects (~0.5 ms of CPU per probe), so the first call on `sock` is answered with
 * an empty object; later calls are Node's own.
 */
export function skipNodeIdentityCopy(sock: TLSSocket): void {
  sock.getPeerCertificate = function firstCall(): PeerCertificate {
    delete (sock as Partial<Pick<TLSSocket, 'getPeerCertificate'>>).getPeerCertificate;
    return {} as PeerCertificate;
  } as TLSSocket['getPeerCertificate'];
}
