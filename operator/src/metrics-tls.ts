// The certificate /metrics is served with under --metrics-auth=kubernetes, so
// the scraper's bearer token never crosses the network in clear: a mounted
// kubernetes.io/tls Secret (--metrics-cert-dir with tls.crt and tls.key),
// re-read while running so a renewal (cert-manager's) is served without a
// restart, or, as controller-runtime does without one, a self-signed
// certificate made at start. Node's crypto makes the key and signs; the few
// DER structures of an X.509 certificate (RFC 5280) are written here, so no
// X.509 library is needed.
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { inOneVersion } from '@flux-rtmpd/rtmpd/secrets-mounted';
import { Watched } from '@flux-rtmpd/rtmpd/secrets-watched';
import type { Logger } from 'pino';

export interface TlsPair {
  /** PEM. */
  cert: string;
  /** PEM. */
  key: string;
}

/** tls.crt and tls.key of a mounted kubernetes.io/tls Secret, both of one version of it. */
export async function readTlsPair(dir: string): Promise<TlsPair> {
  try {
    const files = await inOneVersion([join(dir, 'tls.crt'), join(dir, 'tls.key')]);
    const [cert, key] = await Promise.all(files.map((file) => readFile(file, 'utf8')));
    return { cert: cert!, key: key! };
  } catch (err) {
    throw new Error(`--metrics-cert-dir ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Reads the pair in `dir` and keeps `servers` on it. The files are read again
 * every `intervalMs`; a changed pair that makes a secure context serves new
 * connections from then on, one that does not (unreadable, not PEM, a key that
 * is not the certificate's, a renewal caught half-written) is logged once and
 * the last good pair stays.
 */
export const watchTlsPair = (o: { dir: string; servers: readonly TlsServer[]; log: Logger; intervalMs: number }) =>
  Watched.open({
    label: 'metrics certificate',
    read: () => readTlsPair(o.dir),
    textOf: (pair) => `${pair.cert}\0${pair.key}`,
    parse: (pair) => {
      createSecureContext(pair); // throws for a pair that cannot be served
      return pair;
    },
    logFields: (pair) => {
      const { fingerprint256, validTo } = new X509Certificate(pair.cert);
      return { dir: o.dir, fingerprint: fingerprint256, validTo };
    },
    logger: o.log,
    intervalMs: o.intervalMs,
    onChange: (pair) => {
      for (const server of o.servers) server.setSecureContext(pair);
    },
  });

// DER (X.690): tag, length, contents.
const der = (tag: number, ...contents: Buffer[]): Buffer => {
  const body = Buffer.concat(contents);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
};
const seq = (...c: Buffer[]) => der(0x30, ...c);
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const octets = (b: Buffer) => der(0x04, b);
const bits = (b: Buffer) => der(0x03, Buffer.from([0]), b);
const explicit = (n: number, c: Buffer) => der(0xa0 + n, c);
/** UTCTime, YYMMDDHHMMSSZ: valid for dates before 2050, as RFC 5280 asks. */
const utcTime = (d: Date) => der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z', 'ascii'));

const OID = {
  ecdsaWithSha256: '2a8648ce3d040302',
  commonName: '550403',
  subjectAltName: '551d11',
  basicConstraints: '551d13',
  keyUsage: '551d0f',
  extKeyUsage: '551d25',
  serverAuth: '2b06010505070301',
};

const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), octets(value));

/** dNSName [2] and iPAddress [7] entries of a subjectAltName. */
const altNames = (hosts: readonly string[]) =>
  seq(
    ...hosts.map((h) => {
      if (isIP(h) === 4) return der(0x87, Buffer.from(h.split('.').map(Number)));
      if (isIP(h) === 6) return der(0x87, ipv6Bytes(h));
      return der(0x82, Buffer.from(h, 'ascii'));
    }),
  );

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.from(all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/**
 * A self-signed ECDSA P-256 certificate for `hosts` (names and IP addresses),
 * valid from an hour ago for `days`. It is its own CA (a scraper may pin it).
 */
export function selfSignedTlsPair(hosts: readonly string[], days = 365, now = new Date()): TlsPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = seq(der(0x31, seq(oid(OID.commonName), utf8(hosts[0] ?? 'rtmpd-operator'))));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and without a leading zero byte
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    algorithm,
    name,
    seq(utcTime(new Date(now.getTime() - 3600_000)), utcTime(new Date(now.getTime() + days * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      seq(
        extension(OID.basicConstraints, true, seq(der(0x01, Buffer.from([0xff])))),
        // digitalSignature and keyCertSign
        extension(OID.keyUsage, true, der(0x03, Buffer.from([0x02, 0x84]))),
        extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, altNames(hosts)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const cert = seq(tbs, algorithm, bits(signature));
  return {
    cert: pem('CERTIFICATE', cert),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const pem = (label: string, body: Buffer): string =>
  `-----BEGIN ${label}-----\n${body
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;
