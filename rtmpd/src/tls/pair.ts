// A server certificate and its key, checked the way a handshake uses them.
// rtmpd checks the files it reads at start and reload; the operator checks the
// Secret those files are mounted from, so that a pair rtmpd would refuse shows
// in the RtmpServer's status instead of as pods in a crash loop. Each names
// the two parts as its reader knows them (flags, or the Secret's keys).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Config } from '../config.ts';
import { ConfigError } from '../options.ts';

/** What a client must offer at least: TLS 1.0 and 1.1 are broken and every RTMPS client speaks 1.2. */
const TLS_MIN_VERSION = 'TLSv1.2';

export class CertificateError extends ConfigError {
  override name = 'CertificateError';
}

export interface CertificatePair {
  cert: string;
  key: string;
}

/** How the messages name the certificate and the key: where the reader found them. */
export interface CertificatePairNames {
  cert: string;
  key: string;
}

export type TlsMaxVersion = Config['tlsMaxVersion'];

/**
 * The leaf certificate (the first in the chain, the one served) and the
 * context a handshake would use, or a CertificateError that says which part is
 * wrong. Node's parse errors are not passed on, as they could quote the PEM
 * text; OpenSSL's from the context name no material.
 */
export function checkCertificatePair(
  pair: CertificatePair,
  names: CertificatePairNames,
  maxVersion?: TlsMaxVersion,
): { leaf: X509Certificate; context: SecureContext } {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pair.cert);
  } catch {
    throw new CertificateError(`${names.cert} does not hold a PEM certificate`);
  }
  let key;
  try {
    key = createPrivateKey(pair.key);
  } catch {
    throw new CertificateError(`${names.key} does not hold a PEM private key`);
  }
  if (!leaf.checkPrivateKey(key)) throw new CertificateError(`${names.key} is not the key of the first certificate in ${names.cert}`);
  try {
    return { leaf, context: createSecureContext({ cert: pair.cert, key: pair.key, minVersion: TLS_MIN_VERSION, maxVersion }) };
  } catch (err) {
    throw new CertificateError(`the certificate and key cannot be used: ${(err as Error).message}`, { cause: err });
  }
}
