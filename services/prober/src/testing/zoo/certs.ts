/**
 * Zoo certificates: a throw-away CA and a leaf it signed (SANs IP:127.0.0.1, IP:::1,
 * DNS:zoo.test, DNS:localhost), made with the openssl CLI in a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Generated PEM files (paths and contents). */
export interface ZooCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Removes the temp dir. */
  cleanup(): void;
}

/** Generates the CA and the leaf (about 0.2 s: EC keys). */
export function makeZooCerts(): ZooCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pm-zoo-certs-'));
  const f = (n: string): string => join(dir, n);
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '3', '-subj', '/CN=probemesh zoo CA');
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('key.pem'), '-out', f('leaf.csr'), '-subj', '/CN=zoo.test');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:zoo.test,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  ossl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('cert.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return {
    dir,
    caFile: f('ca.pem'),
    certFile: f('cert.pem'),
    keyFile: f('key.pem'),
    ca: readFileSync(f('ca.pem')),
    cert: readFileSync(f('cert.pem')),
    key: readFileSync(f('key.pem')),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
