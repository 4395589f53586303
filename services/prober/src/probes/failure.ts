/**
 * Probe failure codes (stable strings, the contract in the brief) and the one function
 * that maps Node/OpenSSL error codes to them.
 */

/** Stable probe failure codes; also the `result` label of probemesh_prober_probes_total. */
export const FailureCodes = {
  /** The name does not exist (NXDOMAIN / no address). */
  DNS_NXDOMAIN: 'dns_nxdomain',
  /** The resolver did not answer within the timeout. */
  DNS_TIMEOUT: 'dns_timeout',
  /** Any other resolver failure (SERVFAIL, refused, ...). */
  DNS_ERROR: 'dns_error',
  /** The peer refused the TCP connection (RST to SYN). */
  CONNECT_REFUSED: 'connect_refused',
  /** The TCP connection was not established within the timeout. */
  CONNECT_TIMEOUT: 'connect_timeout',
  /** The connection was reset or closed by the peer mid-exchange. */
  RESET: 'reset',
  /** The TLS handshake failed (protocol/alert/cipher). */
  TLS_HANDSHAKE: 'tls_handshake',
  /** The server certificate is expired or not yet valid. */
  TLS_CERT_EXPIRED: 'tls_cert_expired',
  /** The server certificate does not match the host name. */
  TLS_CERT_HOSTNAME: 'tls_cert_hostname',
  /** The server certificate chain is not trusted (self-signed, unknown CA). */
  TLS_UNTRUSTED: 'tls_untrusted',
  /** The HTTP status is not one of the valid ones. */
  HTTP_STATUS: 'http_status',
  /** The HTTP version is not one of the valid ones. */
  HTTP_VERSION: 'http_version',
  /** The DNS server answered with an rcode other than NXDOMAIN that is not in `valid_rcodes`. */
  DNS_RCODE: 'dns_rcode',
  /** A DNS answer/authority/additional record failed a `validate_*_rrs` regexp check. */
  DNS_ANSWER_REGEX: 'dns_answer_regex',
  /** A tcp `query_response` expectation (`expect` regexp or `expect_bytes`) was not met. */
  TCP_EXPECT: 'tcp_expect',
  /** A tcp `query_response` STARTTLS upgrade failed (handshake on the upgraded socket). */
  STARTTLS: 'starttls',
  /** ICMP: the target (or a router on the way) answered "unreachable" (host, net, port, admin). */
  ICMP_UNREACHABLE: 'icmp_unreachable',
  /** ICMP: no echo reply came back for any packet of the probe. */
  ICMP_TIMEOUT: 'icmp_timeout',
  /** ICMP: a `dont_fragment` packet is larger than the path MTU ("message too long" / frag needed). */
  ICMP_FRAG_NEEDED: 'icmp_frag_needed',
  /** ICMP: the TTL ran out on the way (`ttl` smaller than the hop count: time exceeded). */
  ICMP_TTL_EXCEEDED: 'icmp_ttl_exceeded',
  /** gRPC health: the service reported a status other than SERVING. */
  GRPC_NOT_SERVING: 'grpc_not_serving',
  /** gRPC health: the health service does not know the service (NOT_FOUND). */
  GRPC_UNKNOWN_SERVICE: 'grpc_unknown_service',
  /** gRPC: the Health/Check call failed with any other status (UNIMPLEMENTED, UNAVAILABLE, ...). */
  GRPC_ERROR: 'grpc_error',
  /** Thrift: the call returned T_EXCEPTION or set a declared exception field. */
  THRIFT_EXCEPTION: 'thrift_exception',
  /** Thrift: the reply could not be decoded (wrong protocol/transport, bad sequence id or name). */
  THRIFT_PROTOCOL: 'thrift_protocol',
  /** A `fail_if_body_matches_regexp` matched or a `fail_if_body_not_matches_regexp` did not. */
  BODY_REGEX: 'body_regex',
  /** A `fail_if_header_matches` matched, a `fail_if_header_not_matches` did not, or a required header is missing. */
  HEADER_REGEX: 'header_regex',
  /** The final response came over TLS and the module sets `fail_if_ssl`. */
  HTTP_SSL: 'http_ssl',
  /** The final response came over plain HTTP and the module sets `fail_if_not_ssl`. */
  HTTP_NOT_SSL: 'http_not_ssl',
  /** The probe did not finish within its timeout. */
  TIMEOUT: 'timeout',
  /** The target names a module this prober does not know. */
  UNKNOWN_MODULE: 'unknown_module',
  /** The target cannot be probed as given (bad URL, ...). */
  INVALID_TARGET: 'invalid_target',
  /** Anything else. */
  ERROR: 'error',
} as const;

/** One of {@link FailureCodes}. */
export type FailureCode = (typeof FailureCodes)[keyof typeof FailureCodes];

const BY_ERRNO: Readonly<Record<string, FailureCode>> = {
  ECONNREFUSED: FailureCodes.CONNECT_REFUSED,
  ETIMEDOUT: FailureCodes.CONNECT_TIMEOUT,
  EHOSTUNREACH: FailureCodes.CONNECT_TIMEOUT,
  ENETUNREACH: FailureCodes.CONNECT_TIMEOUT,
  ECONNRESET: FailureCodes.RESET,
  EPIPE: FailureCodes.RESET,
  ECONNABORTED: FailureCodes.RESET,
  ERR_STREAM_PREMATURE_CLOSE: FailureCodes.RESET,
  ENOTFOUND: FailureCodes.DNS_NXDOMAIN,
  ENODATA: FailureCodes.DNS_NXDOMAIN,
  ENONAME: FailureCodes.DNS_NXDOMAIN,
  ETIMEOUT: FailureCodes.DNS_TIMEOUT,
  EAI_AGAIN: FailureCodes.DNS_ERROR,
  ESERVFAIL: FailureCodes.DNS_ERROR,
  EREFUSED: FailureCodes.DNS_ERROR,
  CERT_HAS_EXPIRED: FailureCodes.TLS_CERT_EXPIRED,
  CERT_NOT_YET_VALID: FailureCodes.TLS_CERT_EXPIRED,
  ERR_TLS_CERT_ALTNAME_INVALID: FailureCodes.TLS_CERT_HOSTNAME,
  HOSTNAME_MISMATCH: FailureCodes.TLS_CERT_HOSTNAME,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: FailureCodes.TLS_UNTRUSTED,
  SELF_SIGNED_CERT_IN_CHAIN: FailureCodes.TLS_UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: FailureCodes.TLS_UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT: FailureCodes.TLS_UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: FailureCodes.TLS_UNTRUSTED,
  CERT_UNTRUSTED: FailureCodes.TLS_UNTRUSTED,
  CERT_REVOKED: FailureCodes.TLS_UNTRUSTED,
  CERT_SIGNATURE_FAILURE: FailureCodes.TLS_UNTRUSTED,
  INVALID_CA: FailureCodes.TLS_UNTRUSTED,
  EPROTO: FailureCodes.TLS_HANDSHAKE,
  ERR_SSL_WRONG_VERSION_NUMBER: FailureCodes.TLS_HANDSHAKE,
  ERR_TLS_HANDSHAKE_TIMEOUT: FailureCodes.TLS_HANDSHAKE,
};

/**
 * Maps a thrown/emitted error to a failure code. `phase` is where the probe was when
 * it failed: a connection closed during the TLS handshake is a handshake failure, not
 * a reset.
 */
export function failureCodeOf(err: unknown, phase?: string): FailureCode {
  const code = typeof err === 'object' && err !== null ? String((err as { code?: unknown }).code ?? '') : '';
  if (phase === 'tls' && (code === 'ECONNRESET' || code === 'EPIPE' || code.startsWith('ERR_SSL_'))) return FailureCodes.TLS_HANDSHAKE;
  const mapped = BY_ERRNO[code];
  if (mapped) return mapped;
  if (code.startsWith('ERR_SSL_')) return FailureCodes.TLS_HANDSHAKE;
  if (code === 'ERR_INVALID_URL' || code === 'ERR_INVALID_ARG_VALUE') return FailureCodes.INVALID_TARGET;
  return FailureCodes.ERROR;
}
