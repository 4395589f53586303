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
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, ConnectionOptions, createSecureContext, DetailedPeerCertificate, PeerCertificate, SecureContext, SecureVersion, TLSSocket } from 'node:tls';
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
  /** Chain expiry by leaf fingerprint (bounded): walking the chain costs ~0.5 ms, leaves rarely change. */
  readonly chainExpiry: Map<string, number>;
}

/** Reads the files of `cfg`; throws (a configuration error) when one cannot be read. */
export function prepareTls(cfg: TlsConfig): PreparedTls {
  const options: ConnectionOptions = {
    rejectUnauthorized: false,
    ca: cfg.ca_file !== undefined ? readFileSync(cfg.ca_file) : undefined,
    cert: cfg.cert_file !== undefined ? readFileSync(cfg.cert_file) : undefined,
    key: cfg.key_file !== undefined ? readFileSync(cfg.key_file) : undefined,
    minVersion: cfg.min_version !== undefined ? TLS_VERSIONS[cfg.min_version] : undefined,
    maxVersion: cfg.max_version !== undefined ? TLS_VERSIONS[cfg.max_version] : undefined,
  };
  return { config: cfg, options, secureContext: createSecureContext(options), chainExpiry: new Map() };
}

/** The name checked against the certificate: `server_name`, else the target host. */
export function verifyName(tls: PreparedTls, host: string): string {
  return tls.config.server_name ?? host;
}

/** `tls.connect` options for `host` (SNI only for names, never IP literals). */
export function tlsConnectOptions(tls: PreparedTls, host: string, alpn?: string[]): ConnectionOptions {
  const name = verifyName(tls, host);
  // Node would check the name itself (against "localhost" when SNI is absent); verifyPeer does it.
  return { secureContext: tls.secureContext, rejectUnauthorized: false, servername: isIP(name) ? undefined : name, ALPNProtocols: alpn, checkServerIdentity: () => undefined };
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
  const err = checkServerIdentity(name, leaf);
  if (err) return { code: FailureCodes.TLS_CERT_HOSTNAME, message: `certificate does not match ${name}: ${err.message}` };
  return undefined;
}

const CHAIN_CACHE_MAX = 1024;
const LEAF = Symbol('probemesh.peerLeaf');

const getPeerCertificate = TLSSocket.prototype.getPeerCertificate;

/**
 * The peer's leaf certificate, read once per socket and kept on it (each call converts
 * it again). Not getPeerX509Certificate(): in Node 20 that takes the native certificate
 * away from the socket (a second call, or getPeerCertificate, then gets nothing).
 */
export function peerLeaf(sock: TLSSocket): PeerCertificate | undefined {
  const holder = sock as TLSSocket & { [LEAF]?: PeerCertificate | null };
  if (holder[LEAF] === undefined) {
    const c = getPeerCertificate.call(sock, false);
    holder[LEAF] = c && c.raw ? c : null;
  }
  return holder[LEAF] ?? undefined;
}

/** Earliest expiry over the chain Node built (certificates sent + the trust store's issuer). */
function chainEarliestExpiry(sock: TLSSocket): number {
  let earliest = Infinity;
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = getPeerCertificate.call(sock, true) as DetailedPeerCertificate | undefined;
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    const t = Date.parse(c.valid_to) / 1000;
    if (t < earliest) earliest = t;
    c = c.issuerCertificate;
  }
  return earliest;
}

/** Go's pkix.Name.String(): RDNs in reverse order, comma-joined ("CN=x,O=y,C=z"). */
function goName(dn: Readonly<Record<string, string | string[] | undefined>> | undefined): string {
  return Object.entries(dn ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${String(x).replace(/,/g, '\\,')}`))
    .reverse()
    .join(',');
}

/**
 * blackbox's TLS gauges from a completed handshake: probe_tls_version_info,
 * probe_tls_cipher_info, probe_ssl_earliest_cert_expiry,
 * probe_ssl_last_chain_expiry_timestamp_seconds, probe_ssl_last_chain_info.
 *
 * Node gives one chain (the certificates sent, completed from the trust store), so the
 * earliest expiry and the last chain's expiry are computed over that chain; with Go's
 * several verified chains they can differ. The leaf is read once per socket; the
 * chain walk (getPeerCertificate(true), ~0.5 ms) runs once per new leaf when `tls` is
 * given (its cache), so an intermediate replaced under an unchanged leaf is seen late.
 */
export function tlsGauges(sock: TLSSocket, tls?: PreparedTls): GaugeValue[] {
  const out: GaugeValue[] = [];
  const version = sock.getProtocol();
  if (version) out.push({ name: 'probe_tls_version_info', value: 1, labels: { version: version.replace('TLSv', 'TLS ').replace(/^TLS 1$/, 'TLS 1.0') } });
  const cipher = sock.getCipher();
  if (cipher) out.push({ name: 'probe_tls_cipher_info', value: 1, labels: { cipher: cipher.standardName ?? cipher.name } });
  const leaf = peerLeaf(sock);
  if (!leaf) return out;
  const fingerprint = leaf.fingerprint256 ?? '';
  let earliest = tls?.chainExpiry.get(fingerprint);
  if (earliest === undefined) {
    earliest = chainEarliestExpiry(sock);
    if (tls) {
      if (tls.chainExpiry.size >= CHAIN_CACHE_MAX) tls.chainExpiry.clear();
      tls.chainExpiry.set(fingerprint, earliest);
    }
  }
  if (Number.isFinite(earliest)) {
    out.push({ name: 'probe_ssl_earliest_cert_expiry', value: earliest });
    out.push({ name: 'probe_ssl_last_chain_expiry_timestamp_seconds', value: earliest });
  }
  const dnsNames = (leaf.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  out.push({
    name: 'probe_ssl_last_chain_info',
    value: 1,
    labels: { fingerprint_sha256: fingerprint.replace(/:/g, '').toLowerCase(), subject: goName(leaf.subject as unknown as Record<string, string>), issuer: goName(leaf.issuer as unknown as Record<string, string>), subjectalternative: dnsNames.join(',') },
  });
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
