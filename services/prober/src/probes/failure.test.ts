import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FailureCodes, failureCodeOf } from './failure';

const err = (code: string): Error => Object.assign(new Error(code), { code });

describe('failureCodeOf', () => {
  it('maps Node and OpenSSL error codes', () => {
    const cases: [string, string][] = [
      ['ECONNREFUSED', 'connect_refused'],
      ['ECONNRESET', 'reset'],
      ['ENOTFOUND', 'dns_nxdomain'],
      ['EAI_AGAIN', 'dns_error'],
      ['CERT_HAS_EXPIRED', 'tls_cert_expired'],
      ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls_cert_hostname'],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls_untrusted'],
      ['SELF_SIGNED_CERT_IN_CHAIN', 'tls_untrusted'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls_untrusted'],
      ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'tls_handshake'],
      ['SOMETHING_ELSE', 'error'],
    ];
    for (const [code, want] of cases) assert.equal(failureCodeOf(err(code)), want, code);
    assert.equal(failureCodeOf('not an error'), 'error');
  });
  it('a reset during the TLS handshake is a handshake failure', () => {
    assert.equal(failureCodeOf(err('ECONNRESET'), 'tls'), FailureCodes.TLS_HANDSHAKE);
    assert.equal(failureCodeOf(err('ECONNRESET'), 'processing'), FailureCodes.RESET);
  });
  it('codes are unique', () => {
    const v = Object.values(FailureCodes);
    assert.equal(new Set(v).size, v.length);
  });
});
