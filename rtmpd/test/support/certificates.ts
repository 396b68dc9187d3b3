// Self-signed certificates for the TLS tests, made by the openssl CLI as an
// operator would make one by hand.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint, as X509Certificate.fingerprint256 and TLSSocket.getPeerCertificate() give it. */
  fingerprint: string;
}

const openssl = (args: string[]) => promisify(execFile)('openssl', args);
const subject = (commonName: string) => ['-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'];
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function made(dir: string): Promise<TestCertificate> {
  const certFile = join(dir, 'tls.crt');
  const fingerprint = new X509Certificate(await readFile(certFile)).fingerprint256;
  return { dir, certFile, keyFile: join(dir, 'tls.key'), fingerprint };
}

/** An EC P-256 certificate for 127.0.0.1 and localhost, valid for `days` from now, as tls.crt and tls.key (a kubernetes.io/tls Secret's names) in `dir`. */
export async function selfSigned(dir: string, commonName = 'rtmpd-test', days = 1): Promise<TestCertificate> {
  await mkdir(dir, { recursive: true });
  await openssl([
    'req',
    '-x509',
    ...newKey,
    '-days',
    String(days),
    ...subject(commonName),
    '-keyout',
    join(dir, 'tls.key'),
    '-out',
    join(dir, 'tls.crt'),
  ]);
  return made(dir);
}

/** openssl ca's date form: YYYYMMDDHHMMSSZ. */
const opensslDate = (date: Date) =>
  date
    .toISOString()
    .replace(/\.\d{3}/, '')
    .replace(/[-:T]/g, '');

/**
 * As selfSigned, valid from `notBefore` to `notAfter` (both may be past: an
 * expired certificate), which only `openssl ca` sets; its bookkeeping stays
 * in `dir`/ca.
 */
export async function selfSignedBetween(dir: string, notBefore: Date, notAfter: Date, commonName = 'rtmpd-test'): Promise<TestCertificate> {
  const ca = join(dir, 'ca');
  await mkdir(ca, { recursive: true });
  const request = join(ca, 'tls.csr');
  await openssl(['req', '-new', ...newKey, ...subject(commonName), '-keyout', join(dir, 'tls.key'), '-out', request]);
  const config = join(ca, 'ca.cnf');
  await writeFile(
    config,
    [
      '[ca]',
      'default_ca = self',
      '[self]',
      `database = ${join(ca, 'index.txt')}`,
      `new_certs_dir = ${ca}`,
      `serial = ${join(ca, 'serial')}`,
    ]
      .concat(['default_md = sha256', 'policy = any', 'copy_extensions = copy', '[any]', 'commonName = supplied', ''])
      .join('\n'),
  );
  await writeFile(join(ca, 'index.txt'), '');
  await writeFile(join(ca, 'serial'), '01\n');
  await openssl([
    ...['ca', '-batch', '-config', config, '-selfsign', '-keyfile', join(dir, 'tls.key'), '-in', request, '-notext'],
    ...['-startdate', opensslDate(notBefore), '-enddate', opensslDate(notAfter), '-out', join(dir, 'tls.crt')],
  ]);
  return made(dir);
}
