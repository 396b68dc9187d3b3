// Self-signed certificates for the TLS tests, made by the openssl CLI as an
// operator would make one by hand.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint, as X509Certificate.fingerprint256 and TLSSocket.getPeerCertificate() give it. */
  fingerprint: string;
}

/** An EC P-256 certificate for 127.0.0.1 and localhost, valid for a day, as tls.crt and tls.key (a kubernetes.io/tls Secret's names) in `dir`. */
export async function selfSigned(dir: string, commonName = 'rtmpd-test'): Promise<TestCertificate> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  await promisify(execFile)('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
    ...['-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ...['-keyout', keyFile, '-out', certFile],
  ]);
  const fingerprint = new X509Certificate(await readFile(certFile)).fingerprint256;
  return { dir, certFile, keyFile, fingerprint };
}
