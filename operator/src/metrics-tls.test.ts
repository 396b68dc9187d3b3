import { X509Certificate } from 'node:crypto';
import { createServer, get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { selfSignedTlsPair } from './metrics-tls.ts';

/** A GET over HTTPS that trusts only `ca`: the status, or the TLS error's code. */
const fetchWith = (url: string, ca: string) =>
  new Promise<number | string>((resolve) => {
    get(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

describe('the self-signed certificate of /metrics', () => {
  it('is a valid X.509 certificate for its names and addresses, signed by its own key', () => {
    const { cert } = selfSignedTlsPair(
      ['localhost', '127.0.0.1', '::1', 'rtmpd-operator.system.svc'],
      30,
      new Date('2026-11-28T12:00:00Z'),
    );
    const x509 = new X509Certificate(cert);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.subject).toBe('CN=localhost');
    expect(x509.issuer).toBe('CN=localhost');
    expect(x509.ca).toBe(true);
    expect(x509.checkHost('rtmpd-operator.system.svc')).toBe('rtmpd-operator.system.svc');
    expect(x509.checkHost('other.example')).toBeUndefined();
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new Date(x509.validFrom).toISOString()).toBe('2026-11-28T11:00:00.000Z');
    expect(new Date(x509.validTo).toISOString()).toBe('2026-12-28T12:00:00.000Z');
  });

  it('serves HTTPS that a client trusting it verifies, and a client trusting another certificate refuses', async () => {
    const pair = selfSignedTlsPair(['localhost', '127.0.0.1']);
    const server = createServer(pair, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      expect(await fetchWith(url, pair.cert)).toBe(200);
      expect(await fetchWith(url, selfSignedTlsPair(['localhost', '127.0.0.1']).cert)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    } finally {
      server.close();
    }
  });
});
