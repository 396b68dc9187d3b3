// The server certificate of the RTMPS and HTTPS ports: a PEM chain and its
// key, read from two files and polled while rtmpd runs (cert-manager renews
// a mounted Secret in place). A changed pair that is usable replaces the one
// new connections get; live connections keep theirs. A bad pair is logged
// and counted, and the last good one stays. A pair whose certificate expired
// or expires soon is served all the same, with a warning at load and reload:
// refusing it would cut off every client, also those that never check dates.
import type { SecureContext } from 'node:tls';
import { inOneVersion, readBounded, SecretPathError } from '../secrets/mounted.ts';
import { Watched } from '../secrets/watched.ts';
import type { Logger } from '../telemetry/logger.ts';
import { certificateExpiry } from './expiry.ts';
import { CertificateError, checkCertificatePair, type CertificatePair, type TlsMaxVersion } from './pair.ts';

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** A usable pair: the context new connections get, and the leaf certificate's expiry. */
export interface LoadedCertificate {
  pair: CertificatePair;
  context: SecureContext;
  /** The leaf certificate's notAfter, seconds since the epoch. */
  notAfter: number;
  /** SHA-256 fingerprint of the leaf certificate, as in the logs. */
  fingerprint: string;
}

/** The flags that name the two files, as every message about them does. */
const flags = { cert: '--tls-cert-file', key: '--tls-key-file' };

/** Reads `file`, the version of `path` (the file the flag `option` names) to read now. */
async function readPem(file: string, path: string, option: string): Promise<string> {
  try {
    return await readBounded(file);
  } catch (err) {
    if (err instanceof SecretPathError) throw new CertificateError(`${option} ${err.message}`);
    throw new CertificateError(`${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The certificate and the key; from one version of the Secret when both files are in its mount. */
export async function readCertificateFiles(files: CertificateFiles): Promise<CertificatePair> {
  const [certFile, keyFile] = await versionOf(files);
  const [cert, key] = await Promise.all([readPem(certFile!, files.certFile, flags.cert), readPem(keyFile!, files.keyFile, flags.key)]);
  return { cert, key };
}

async function versionOf({ certFile, keyFile }: CertificateFiles): Promise<string[]> {
  try {
    return await inOneVersion([certFile, keyFile]);
  } catch (err) {
    throw new CertificateError(`${flags.cert} and ${flags.key}: ${(err as Error).message}`);
  }
}

/** Checks a pair the way a handshake would use it, with messages that name the flag of the part that is wrong. */
export function loadCertificate(pair: CertificatePair, maxVersion: TlsMaxVersion): LoadedCertificate {
  const { leaf, context } = checkCertificatePair(pair, flags, maxVersion);
  return { pair, context, notAfter: Date.parse(leaf.validTo) / 1000, fingerprint: leaf.fingerprint256 };
}

export interface ServerCertificateOptions extends CertificateFiles {
  maxVersion: TlsMaxVersion;
  logger: Logger;
  intervalMs: number;
  onChange?: (loaded: LoadedCertificate) => void;
}

export type ServerCertificate = Watched<CertificatePair, LoadedCertificate>;

const describe = (loaded: LoadedCertificate) => ({
  fingerprint: loaded.fingerprint,
  notAfter: new Date(loaded.notAfter * 1000).toISOString(),
});

/** Warns of a certificate that expired or expires within certificateWarningMs, as cert-manager-era servers do. */
function warnOfExpiry(loaded: LoadedCertificate, logger: Logger): void {
  const expiry = certificateExpiry(new Date(loaded.notAfter * 1000), new Date());
  if (expiry.state === 'expired')
    logger.warn(describe(loaded), 'tls: certificate expired; it is still served, and clients that check dates refuse it');
  else if (expiry.state === 'expiring') logger.warn(describe(loaded), `tls: certificate expires in ${expiry.left}; renew it`);
}

/** Reads and checks the pair once (a bad one is an error at start) and keeps polling the files. */
export async function openServerCertificate({
  maxVersion,
  logger,
  onChange,
  ...options
}: ServerCertificateOptions): Promise<ServerCertificate> {
  const certificate = await Watched.open({
    ...options,
    label: 'tls: certificate',
    read: () => readCertificateFiles(options),
    textOf: (pair) => `${pair.cert}\0${pair.key}`,
    parse: (pair) => loadCertificate(pair, maxVersion),
    logFields: describe,
    logger,
    onChange: (loaded) => {
      warnOfExpiry(loaded, logger);
      onChange?.(loaded);
    },
  });
  logger.info(describe(certificate.value), 'tls: certificate loaded');
  warnOfExpiry(certificate.value, logger);
  return certificate;
}
