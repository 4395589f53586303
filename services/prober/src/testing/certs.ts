/**
 * Test certificates made with the openssl CLI in a temp dir: a CA, a server certificate
 * it signed (127.0.0.1, ::1, localhost, good.test), one for the wrong host, one that
 * expired (signed with `openssl ca -startdate/-enddate` in the past: OpenSSL 3.0's
 * `x509` has no `-not_before`), and a self-signed one from an unknown CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key and certificate pair (PEM) and the certificate's file path. */
export interface CertPair {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
}

/** The certificates of a test run. */
export interface TestCerts {
  readonly dir: string;
  /** The CA certificate file (use as `tls_config.ca_file`). */
  readonly caFile: string;
  /** Signed by the CA, valid, SANs 127.0.0.1, ::1, localhost, good.test. */
  readonly good: CertPair;
  /** Signed by the CA, valid, only for wrong.test. */
  readonly wrongHost: CertPair;
  /** Signed by the CA, SANs like `good`, expired 2020-01-02. */
  readonly expired: CertPair;
  /** Self-signed, SANs like `good` (no CA trusts it). */
  readonly untrusted: CertPair;
  /** Client certificate signed by the CA (for mutual TLS). */
  readonly client: CertPair;
  /** Removes the directory. */
  remove(): void;
}

const GOOD_SAN = 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:good.test';

function ssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pair(dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

/** Creates the certificates (EC P-256 keys: fast to make and to handshake). */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pm-certs-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/O=probemesh test/CN=probemesh test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const signed = (name: string, cn: string, san: string): void => {
    ssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(join(dir, `${name}.ext`), `${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '20', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  };
  signed('good', 'good.test', GOOD_SAN);
  signed('wrong', 'wrong.test', 'subjectAltName=DNS:wrong.test');
  signed('client', 'probemesh client', 'subjectAltName=DNS:client.test');
  // Expired: `openssl ca` takes explicit dates; it needs a tiny CA database.
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    ['[ca]', 'default_ca=test', '[test]', `dir=${dir}`, 'database=$dir/index.txt', 'serial=$dir/serial', 'new_certs_dir=$dir', 'certificate=$dir/ca.crt', 'private_key=$dir/ca.key', 'default_md=sha256', 'policy=any', 'copy_extensions=none', 'unique_subject=no', '[any]', 'commonName=supplied', '[ext]', GOOD_SAN, ''].join('\n'),
  );
  ssl(dir, ['req', ...ec, '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=expired.test']);
  ssl(dir, ['ca', '-batch', '-config', 'ca.cnf', '-extensions', 'ext', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-in', 'expired.csr', '-out', 'expired.crt', '-notext']);
  ssl(dir, ['req', '-x509', ...ec, '-keyout', 'untrusted.key', '-out', 'untrusted.crt', '-days', '20', '-subj', '/CN=untrusted.test', '-addext', GOOD_SAN]);
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    good: pair(dir, 'good'),
    wrongHost: pair(dir, 'wrong'),
    expired: pair(dir, 'expired'),
    untrusted: pair(dir, 'untrusted'),
    client: pair(dir, 'client'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
