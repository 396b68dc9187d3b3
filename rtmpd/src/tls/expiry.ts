// When a server certificate is worth a warning. rtmpd logs it when it loads
// the certificate, and the operator, reading the same certificate from the
// Secret, makes it an Event (expiring) or a Stalled cause (expired): both
// start warning on the same day.

/**
 * How long before its notAfter a certificate counts as expiring: cert-manager
 * renews a 90-day certificate 30 days before, so one still in use 14 days
 * before was not renewed.
 */
export const certificateWarningMs = 14 * 24 * 3600_000;

type CertificateExpiry = { state: 'valid' } | { state: 'expiring'; left: string } | { state: 'expired' };

/** Whether a certificate expired, expires within certificateWarningMs (and how soon, in words), or neither. */
export function certificateExpiry(notAfter: Date, now: Date): CertificateExpiry {
  const left = notAfter.getTime() - now.getTime();
  if (left <= 0) return { state: 'expired' };
  if (left > certificateWarningMs) return { state: 'valid' };
  const days = Math.floor(left / (24 * 3600_000));
  return { state: 'expiring', left: days === 0 ? 'less than a day' : `${days} day${days > 1 ? 's' : ''}` };
}
