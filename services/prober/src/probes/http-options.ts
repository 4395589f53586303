/**
 * The `http` module options: blackbox_exporter 0.23's `http:` block, same key names and
 * defaults, checked when the config is loaded, and their preparation (regexes compiled,
 * files read) when the module is built.
 *
 * Differences, on purpose: `proxy_url`, `skip_resolve_phase_with_proxy` and `oauth2` are
 * rejected (probemesh probes targets directly); `http2_prior_knowledge` (h2c) is ours —
 * blackbox (Go net/http) never speaks h2c.
 */
import { readFileSync } from 'node:fs';
import { addIssue, bool, Infer, list, num, obj, optional, ParseContext, record, Schema, str } from '@probemesh/common';
import { goRegExp, goRegExpSchema } from './go-regexp';
import { ipProtocolFallback, preferredIpProtocol } from './target-addr';
import { prepareTls, PreparedTls, tlsConfigSchema } from './tls-info';

/** HTTP versions as blackbox writes them (Go's `resp.Proto`). */
export const HTTP_VERSION_NAMES = ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2.0'] as const;


const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A byte size: an integer or a string like "10MB" (blackbox `<size>`, base 2). */
function byteSize(opts: { default: number; doc: string }): Schema<number> {
  return {
    expected: 'a size in bytes (e.g. 1048576 or "10MB")',
    envKind: 'string',
    doc: opts.doc,
    defaultValue: () => opts.default,
    parse(v: unknown, path: string, ctx: ParseContext) {
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
      const m = typeof v === 'string' ? /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(v) : null;
      const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) {
        addIssue(ctx, path, `expected a size in bytes (e.g. 1048576 or "10MB"), got ${JSON.stringify(v)}`);
        return undefined;
      }
      return Number(m[1]) * unit;
    },
  };
}

/** Rejects a blackbox key probemesh does not implement, naming it. */
function unsupported(why: string): Schema<undefined> {
  return {
    expected: 'absent',
    optional: true,
    parse(_v, path, ctx) {
      addIssue(ctx, path, `not supported by probemesh (${why})`);
      return undefined;
    },
  };
}

const headerMatch = obj({
  header: str({ nonEmpty: true, doc: 'Response header name (case-insensitive).' }),
  regexp: goRegExpSchema('Regular expression matched against each value of the header.'),
  allow_missing: bool({ default: false, doc: 'A missing header passes the check instead of failing it. @default false' }),
});

/** Options of an `http` probe module (blackbox `http:` block). */
export const httpProbeSchema = obj(
  {
    valid_status_codes: list(num({ int: true, min: 100, max: 599 }), { default: [], doc: 'Accepted status codes; empty = any 2xx. @default []' }),
    valid_http_versions: list(str({ oneOf: HTTP_VERSION_NAMES }), { default: [], doc: 'Accepted HTTP versions ("HTTP/1.1", "HTTP/2.0"); empty = any. @default []' }),
    method: str({ default: 'GET', pattern: /^[A-Z]+$/, doc: 'HTTP method. @default "GET"' }),
    headers: record(str(), { default: {}, doc: 'Request headers (a `Host` header sets the virtual host). @default {}' }),
    body: optional(str({ doc: 'Request body. @default none' })),
    body_size_limit: byteSize({ default: 0, doc: 'Largest uncompressed response body read, in bytes or with a unit ("10MB"); 0 = no limit; a larger body fails the probe. @default 0' }),
    compression: str({ default: '', oneOf: ['', 'identity', 'gzip', 'deflate', 'br'], doc: 'Decode the response body with this algorithm (and ask for it in Accept-Encoding unless a header is set). @default ""' }),
    follow_redirects: bool({ default: true, doc: 'Follow redirects (up to 10), timing each hop. @default true' }),
    no_follow_redirects: optional(bool({ doc: 'Deprecated blackbox spelling of `follow_redirects: false`. @default none' })),
    fail_if_ssl: bool({ default: false, doc: 'Fail (`http_ssl`) when the final response came over TLS. @default false' }),
    fail_if_not_ssl: bool({ default: false, doc: 'Fail (`http_not_ssl`) when the final response did not come over TLS. @default false' }),
    fail_if_body_matches_regexp: list(goRegExpSchema(), { default: [], doc: 'Fail (`body_regex`) when the body matches any of these. @default []' }),
    fail_if_body_not_matches_regexp: list(goRegExpSchema(), { default: [], doc: 'Fail (`body_regex`) when the body does not match one of these. @default []' }),
    fail_if_header_matches: list(headerMatch, { default: [], doc: 'Fail (`header_regex`) when a value of the header matches. @default []' }),
    fail_if_header_not_matches: list(headerMatch, { default: [], doc: 'Fail (`header_regex`) when no value of the header matches. @default []' }),
    tls_config: tlsConfigSchema,
    basic_auth: optional(
      obj({
        username: str({ default: '', doc: 'User name. @default ""' }),
        password: optional(str({ doc: 'Password. @default none' })),
        password_file: optional(str({ nonEmpty: true, doc: 'File holding the password. @default none' })),
      }),
    ),
    bearer_token: optional(str({ nonEmpty: true, doc: 'Sent as `Authorization: Bearer <token>`. @default none' })),
    bearer_token_file: optional(str({ nonEmpty: true, doc: 'File holding the bearer token. @default none' })),
    authorization: optional(
      obj({
        type: str({ default: 'Bearer', nonEmpty: true, doc: 'Authorization scheme. @default "Bearer"' }),
        credentials: optional(str({ doc: 'Credentials. @default none' })),
        credentials_file: optional(str({ nonEmpty: true, doc: 'File holding the credentials. @default none' })),
      }),
    ),
    enable_http2: bool({ default: true, doc: 'Offer HTTP/2 over TLS (ALPN h2, else HTTP/1.1). @default true' }),
    http2_prior_knowledge: bool({ default: false, doc: 'probemesh extension: speak HTTP/2 without TLS (h2c, prior knowledge) to http:// URLs. @default false' }),
    preferred_ip_protocol: preferredIpProtocol('ip6'),
    ip_protocol_fallback: ipProtocolFallback(),
    proxy_url: unsupported('probes go to the target directly'),
    skip_resolve_phase_with_proxy: unsupported('no proxy support'),
    oauth2: unsupported('no OAuth 2.0 token fetching'),
  },
  {
    check(v, path, ctx) {
      const p = (k: string): string => (path ? `${path}.${k}` : k);
      const auths = [v.basic_auth !== undefined, v.bearer_token !== undefined || v.bearer_token_file !== undefined, v.authorization !== undefined].filter(Boolean).length;
      if (auths > 1) addIssue(ctx, p('basic_auth'), 'at most one of basic_auth, bearer_token/bearer_token_file and authorization may be set');
      if (v.bearer_token !== undefined && v.bearer_token_file !== undefined) addIssue(ctx, p('bearer_token_file'), 'bearer_token and bearer_token_file are mutually exclusive');
      if (v.basic_auth?.password !== undefined && v.basic_auth.password_file !== undefined) addIssue(ctx, p('basic_auth.password_file'), 'password and password_file are mutually exclusive');
      if (v.authorization?.credentials !== undefined && v.authorization.credentials_file !== undefined) addIssue(ctx, p('authorization.credentials_file'), 'credentials and credentials_file are mutually exclusive');
      for (const [name, value] of Object.entries(v.headers)) {
        // Sent as written (http1.ts): a name must be an RFC 9110 token, a value has no CR/LF/NUL.
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) addIssue(ctx, p(`headers.${name}`), 'invalid header name (letters, digits and !#$%&\'*+-.^_`|~ only)');
        else if (/[\r\n\0]/.test(value)) addIssue(ctx, p(`headers.${name}`), 'a header value must not contain CR, LF or NUL');
      }
      if (v.http2_prior_knowledge && !v.enable_http2) addIssue(ctx, p('http2_prior_knowledge'), 'needs enable_http2: true');
    },
  },
);

/** Parsed options of an `http` probe module. */
export type HttpProbeOptions = Infer<typeof httpProbeSchema>;

/** One compiled header check. */
export interface HeaderCheck {
  readonly header: string;
  readonly regexp: RegExp;
  readonly allowMissing: boolean;
}

/** Options turned into what a probe run needs (done once per module). */
export interface PreparedHttp {
  readonly opts: HttpProbeOptions;
  readonly tls: PreparedTls;
  readonly statusValid: (status: number) => boolean;
  readonly followRedirects: boolean;
  /** Request headers (lower-case names), auth and Accept-Encoding included, Host excluded. */
  readonly headers: Readonly<Record<string, string>>;
  /** The configured Host header, if any. */
  readonly hostHeader: string | undefined;
  readonly body: Buffer | undefined;
  readonly bodyMatches: readonly RegExp[];
  readonly bodyNotMatches: readonly RegExp[];
  readonly headerMatches: readonly HeaderCheck[];
  readonly headerNotMatches: readonly HeaderCheck[];
  /** Whether the body must be kept in memory (body regexes). */
  readonly keepBody: boolean;
}

const readSecret = (file: string): string => readFileSync(file, 'utf8').trim();

/**
 * Compiles regexes and reads the CA/cert/key/secret files. Throws when a file cannot
 * be read: a configuration error, reported when the module is built, not per probe.
 */
export function prepareHttp(opts: HttpProbeOptions, userAgent: string): PreparedHttp {
  const valid = opts.valid_status_codes.length > 0 ? new Set(opts.valid_status_codes) : undefined;
  const headers: Record<string, string> = { 'user-agent': userAgent };
  let hostHeader: string | undefined;
  for (const [k, v] of Object.entries(opts.headers)) {
    if (k.toLowerCase() === 'host') hostHeader = v;
    else headers[k.toLowerCase()] = v;
  }
  if (opts.compression !== '' && headers['accept-encoding'] === undefined) headers['accept-encoding'] = opts.compression;
  if (opts.basic_auth) {
    const pw = opts.basic_auth.password_file !== undefined ? readSecret(opts.basic_auth.password_file) : opts.basic_auth.password ?? '';
    headers.authorization = `Basic ${Buffer.from(`${opts.basic_auth.username}:${pw}`).toString('base64')}`;
  }
  const bearer = opts.bearer_token_file !== undefined ? readSecret(opts.bearer_token_file) : opts.bearer_token;
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  if (opts.authorization) {
    const a = opts.authorization;
    const cred = a.credentials_file !== undefined ? readSecret(a.credentials_file) : a.credentials ?? '';
    headers.authorization = `${a.type} ${cred}`;
  }
  const checks = (list: HttpProbeOptions['fail_if_header_matches']): HeaderCheck[] => list.map((h) => ({ header: h.header.toLowerCase(), regexp: goRegExp(h.regexp), allowMissing: h.allow_missing }));
  const bodyMatches = opts.fail_if_body_matches_regexp.map((r) => goRegExp(r));
  const bodyNotMatches = opts.fail_if_body_not_matches_regexp.map((r) => goRegExp(r));
  return {
    opts,
    tls: prepareTls(opts.tls_config),
    statusValid: (s) => (valid ? valid.has(s) : s >= 200 && s <= 299),
    followRedirects: opts.no_follow_redirects !== undefined ? !opts.no_follow_redirects : opts.follow_redirects,
    headers,
    hostHeader,
    body: opts.body !== undefined ? Buffer.from(opts.body) : undefined,
    bodyMatches,
    bodyNotMatches,
    headerMatches: checks(opts.fail_if_header_matches),
    headerNotMatches: checks(opts.fail_if_header_not_matches),
    keepBody: bodyMatches.length + bodyNotMatches.length > 0,
  };
}
