import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { mountSecret } from '../test/mounted-secret.ts';
import { readTlsPair, selfSignedTlsPair, watchTlsPair, type TlsPair } from './metrics-tls.ts';

/** A GET over HTTPS, on a new connection, that trusts only `ca`: the status, or the TLS error's code. */
const fetchWith = (url: string, ca: string) =>
  new Promise<number | string>((resolve) => {
    get(url, { ca, agent: false }, (res) => {
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

describe('the self-signed certificate of /metrics, long names', () => {
  it('encodes every DER length around the ends of the short and one-byte forms (127/128, 255/256 bytes): names of 100 to 253 characters', () => {
    for (let length = 100; length <= 253; length++) {
      const host = `${'a'.repeat(60)}.${'b'.repeat(length - 61)}`;
      const x509 = new X509Certificate(selfSignedTlsPair([host]).cert);
      expect(x509.checkHost(host)).toBe(host);
    }
  });
});

describe('reading the pair of a mounted Secret', () => {
  it('reads the certificate and the key of one version while the kubelet renews the Secret again and again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'operator-metrics-tls-'));
    const first = selfSignedTlsPair(['localhost']);
    const renewed = selfSignedTlsPair(['localhost']);
    const secret = await mountSecret(dir, first);
    const versions = [await secret.put(renewed), '..1'];
    let renewing = true;
    const renewals = (async () => {
      for (let n = 0; renewing; n++) await secret.point(versions[n % 2]!);
    })();
    try {
      // Reads that a renewal falls between would pair one version's certificate with the other's key.
      const mixed: TlsPair[] = [];
      for (let reads = 0; reads < 1000; reads++) {
        const pair = await readTlsPair(dir);
        if ((pair.cert === first.cert) !== (pair.key === first.key)) mixed.push(pair);
      }
      expect(mixed).toHaveLength(0);
    } finally {
      renewing = false;
      await renewals;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the certificate of a mounted Secret', () => {
  it('serves a renewed pair from its files without a restart, and keeps the last good one when the new pair is bad', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'operator-metrics-tls-'));
    const first = selfSignedTlsPair(['localhost', '127.0.0.1']);
    const renewed = selfSignedTlsPair(['localhost', '127.0.0.1']);
    const secret = await mountSecret(dir, first);
    const lines: { msg: string; err?: string }[] = [];
    const log = pino(new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) }));
    const server = createServer(await readTlsPair(dir), (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // The test polls, so that it knows how many polls read the files: the timer (an hour) does not.
    const watch = await watchTlsPair({ dir, servers: [server], log, intervalMs: 3_600_000 });
    const refusals = () => lines.filter((l) => l.msg === 'metrics certificate not reloaded; the last good version stays');
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      expect(await fetchWith(url, first.cert)).toBe(200);
      await secret.put(renewed);
      await watch.poll();
      expect(await fetchWith(url, renewed.cert)).toBe(200);
      expect(await fetchWith(url, first.cert)).not.toBe(200);
      expect(lines).toContainEqual(expect.objectContaining({ msg: 'metrics certificate reloaded' }));
      // A certificate whose key is another's: refused, logged once however many polls read it, the renewed pair still served.
      await secret.put({ cert: first.cert, key: renewed.key });
      for (let polls = 0; polls < 3; polls++) await watch.poll();
      expect(refusals()).toHaveLength(1);
      expect(await fetchWith(url, renewed.cert)).toBe(200);
      // Put right, it is taken.
      await secret.put(first);
      await watch.poll();
      expect(await fetchWith(url, first.cert)).toBe(200);
    } finally {
      watch.close();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
