import { describe, expect, it } from 'vitest';
import { handshakeFailureOf } from './handshake.ts';

describe('handshakeFailureOf', () => {
  it.each([
    // What Node reports for plain RTMP's C0 (3) and for an HTTP request sent to a TLS port.
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'not_tls'],
    ['ERR_SSL_HTTP_REQUEST', 'not_tls'],
    ['ERR_SSL_PACKET_LENGTH_TOO_LONG', 'not_tls'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'protocol_version'],
    ['ERR_SSL_NO_SHARED_CIPHER', 'protocol_version'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'certificate_refused'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'certificate_refused'],
    ['ECONNRESET', 'aborted'],
    ['EPIPE', 'aborted'],
    ['ERR_SSL_SOMETHING_NEW', 'other'],
    [undefined, 'other'],
  ])('%s is %s', (code, reason) => {
    expect(handshakeFailureOf(code)).toBe(reason);
  });
});
