// Real TLS failures from the connector rtmps:// forwards use, against a
// loopback server with a self-signed certificate for 127.0.0.1.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSigned } from '../../test/support/certificates.ts';
import { parseDestination } from '../rtmp/client/destination.ts';
import { describeCertificateError } from './certificate-errors.ts';
import { tlsConnector } from './tls-connect.ts';

let dir: string;
let certificate: string;
const servers: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rtmpd-certificate-errors-'));
  const files = await selfSigned(dir);
  certificate = await readFile(files.certFile, 'utf8');
  const key = await readFile(files.keyFile, 'utf8');
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const server = createServer({ cert: certificate, key }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    servers.push(server);
  }
});
afterAll(async () => {
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

/** The error of a connection to servers[index] through the forwards' connector. */
function failureOf(index: number, extraCa: string | undefined): Promise<Error> {
  const { address, port } = servers[index]!.address() as AddressInfo;
  const socket = tlsConnector(extraCa)(parseDestination(`rtmps://${address}:${port}/app/key`));
  return new Promise((resolve, reject) => {
    socket.once('error', resolve);
    socket.once('secureConnect', () => reject(new Error('the connection was trusted')));
  });
}

describe('describeCertificateError', () => {
  it('says an untrusted certificate is fixed with --forward-tls-ca-file, without Node.js hint', async () => {
    const err = await failureOf(0, undefined);
    expect(err.message).toContain('--use-system-ca');
    expect(describeCertificateError(err)).toBe(
      'certificate not trusted: add the CA that signed it to --forward-tls-ca-file (spec.forwards.caSecret on Kubernetes) ' +
        '(self-signed certificate, DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
  });

  it('says the URL names a host the certificate is not for', async () => {
    const description = describeCertificateError(await failureOf(1, certificate));
    expect(description).toMatch(
      /^certificate name mismatch: the rtmps:\/\/ URL must name a host the certificate is for \(.*127\.0\.0\.2.*, ERR_TLS_CERT_ALTNAME_INVALID\)$/,
    );
  });

  it('leaves other errors to their own text', () => {
    expect(
      describeCertificateError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
    ).toBeUndefined();
  });
});
