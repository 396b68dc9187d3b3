// What an rtmps:// destination's certificate failure means for the user, and
// which option fixes it. Node's own text for an untrusted certificate ends
// with a hint to run Node.js with --use-system-ca: rtmpd's users configure
// --forward-tls-ca-file (the operator's spec.forwards.caSecret) instead.
// Pure (no node:tls): the forwarder describes every failure with it.

const UNTRUSTED = 'certificate not trusted: add the CA that signed it to --forward-tls-ca-file (spec.forwards.caSecret on Kubernetes)';
const NAME_MISMATCH = 'certificate name mismatch: the rtmps:// URL must name a host the certificate is for';

/** OpenSSL's verify codes (and Node's host name check) → what happened and what fixes it. */
const CERTIFICATE_PROBLEMS = new Map([
  ['DEPTH_ZERO_SELF_SIGNED_CERT', UNTRUSTED],
  ['SELF_SIGNED_CERT_IN_CHAIN', UNTRUSTED],
  ['UNABLE_TO_GET_ISSUER_CERT', UNTRUSTED],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', UNTRUSTED],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', UNTRUSTED],
  ['CERT_UNTRUSTED', UNTRUSTED],
  ['ERR_TLS_CERT_ALTNAME_INVALID', NAME_MISMATCH],
  ['HOSTNAME_MISMATCH', NAME_MISMATCH],
  ['CERT_HAS_EXPIRED', 'certificate expired: the destination must renew it'],
  ['CERT_NOT_YET_VALID', "certificate not yet valid: check this host's and the destination's clocks"],
]);

/**
 * A certificate failure as "what happened: what fixes it (Node's text without
 * its --use-system-ca hint, the code)"; undefined for any other error.
 */
export function describeCertificateError(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  const problem = code === undefined ? undefined : CERTIFICATE_PROBLEMS.get(code);
  if (problem === undefined) return undefined;
  const detail = err.message.replace(/; if the root CA is installed locally, try running Node\.js with --use-system-ca$/, '');
  return `${problem} (${detail}, ${code})`;
}
