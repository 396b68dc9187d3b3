import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selfSigned, selfSignedBetween, type TestCertificate } from '../../test/support/certificates.ts';
import {
  loadCertificate,
  openServerCertificate,
  readCertificateFiles,
  type LoadedCertificate,
  type ServerCertificate,
} from './certificate.ts';
import { CertificateError } from './pair.ts';

const root = join(tmpdir(), `rtmpd-tls-cert-${process.pid}`);
let first: TestCertificate;
let second: TestCertificate;

beforeAll(async () => {
  await rm(root, { recursive: true, force: true });
  [first, second] = await Promise.all([selfSigned(join(root, 'first')), selfSigned(join(root, 'second'))]);
});
afterAll(() => rm(root, { recursive: true, force: true }));

const read = async (cert: string, key: string) => ({ cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') });

describe('loadCertificate', () => {
  it('takes a matching PEM pair and reports its fingerprint and expiry', async () => {
    const loaded = loadCertificate(await read(first.certFile, first.keyFile), 'TLSv1.3');
    expect(loaded.fingerprint).toBe(first.fingerprint);
    const day = 24 * 3600;
    expect(loaded.notAfter).toBeGreaterThan(Date.now() / 1000 + day - 3600);
    expect(loaded.notAfter).toBeLessThan(Date.now() / 1000 + day + 3600);
  });

  it.each([
    ['a key that is not the certificate’s', () => read(first.certFile, second.keyFile), 'is not the key of the first certificate'],
    [
      'a certificate that is not PEM',
      async () => ({ ...(await read(first.certFile, first.keyFile)), cert: 'hello' }),
      'does not hold a PEM certificate',
    ],
    ['a key that is not PEM', async () => ({ ...(await read(first.certFile, first.keyFile)), key: '' }), 'does not hold a PEM private key'],
    ['the key in the certificate file', () => read(first.keyFile, first.keyFile), 'does not hold a PEM certificate'],
  ])('refuses %s with a message naming the flag', async (_, pair, message) => {
    const load = async () => loadCertificate(await pair(), 'TLSv1.3');
    await expect(load()).rejects.toThrow(CertificateError);
    await expect(load()).rejects.toThrow(message);
  });

  it('names the file it cannot read', async () => {
    await expect(readCertificateFiles({ certFile: join(root, 'missing.crt'), keyFile: first.keyFile })).rejects.toThrow(
      `--tls-cert-file ${join(root, 'missing.crt')}: cannot read it (ENOENT)`,
    );
  });
});

describe('openServerCertificate', () => {
  let certificate: ServerCertificate | undefined;
  afterEach(() => certificate?.close());

  /** A mounted Secret: tls.crt and tls.key reached through a `..data` symlink the kubelet swaps in one rename. */
  async function mounted(name: string, target: TestCertificate): Promise<{ dir: string; swap(to: string): Promise<void> }> {
    const dir = join(root, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await symlink(target.dir, join(dir, '..data'));
    await symlink(join('..data', 'tls.crt'), join(dir, 'tls.crt'));
    await symlink(join('..data', 'tls.key'), join(dir, 'tls.key'));
    return {
      dir,
      swap: async (to) => {
        await symlink(to, join(dir, '..data_tmp'));
        await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      },
    };
  }

  const open = (dir: string, logger = pino({ level: 'silent' }), onChange?: (loaded: LoadedCertificate) => void) =>
    openServerCertificate({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      maxVersion: 'TLSv1.3',
      logger,
      intervalMs: 60_000,
      ...(onChange ? { onChange } : {}),
    });

  it('takes a renewed pair swapped in through the symlink, tells its listeners, and counts it', async () => {
    const secret = await mounted('renewed', first);
    const seen: string[] = [];
    certificate = await open(secret.dir, undefined, (loaded) => seen.push(loaded.fingerprint));
    await certificate.poll();
    expect(certificate.reloads).toEqual({ ok: 0, error: 0 });
    await secret.swap(second.dir);
    await certificate.poll();
    expect(certificate.value.fingerprint).toBe(second.fingerprint);
    expect(seen).toEqual([second.fingerprint]);
    expect(certificate.reloads).toEqual({ ok: 1, error: 0 });
  });

  it('reads the certificate and the key of one version while the kubelet renews the Secret again and again', async () => {
    const secret = await mounted('renewing', first);
    certificate = await open(secret.dir);
    let renewing = true;
    const renewals = (async () => {
      for (let n = 1; renewing; n++) await secret.swap([first.dir, second.dir][n % 2]!);
    })();
    try {
      // A poll that a renewal falls between would pair one version's certificate with the other's key, and refuse it.
      for (let polls = 0; polls < 300; polls++) await certificate.poll();
    } finally {
      renewing = false;
      await renewals;
    }
    expect(certificate.reloads.ok).toBeGreaterThan(0);
    expect(certificate.reloads.error).toBe(0);
  });

  it('keeps the last good pair when the new one is bad, and reports a bad pair once', async () => {
    const secret = await mounted('bad', first);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    certificate = await open(secret.dir, logger);
    const mismatched = join(root, 'mismatched');
    await selfSigned(mismatched);
    await writeFile(join(mismatched, 'tls.key'), await readFile(second.keyFile));
    await secret.swap(mismatched);
    await certificate.poll();
    await certificate.poll();
    expect(certificate.value.fingerprint).toBe(first.fingerprint);
    expect(certificate.reloads).toEqual({ ok: 0, error: 1 });
    const refused = lines.map((line) => JSON.parse(line) as { msg: string; err?: string }).filter((l) => l.msg.includes('not reloaded'));
    expect(refused).toHaveLength(1);
    expect(refused[0]!.err).toContain('is not the key of the first certificate');

    // Unreadable files are a second, different failure; going back to the pair in use changes nothing.
    await secret.swap(join(root, 'nowhere'));
    await certificate.poll();
    expect(certificate.reloads).toEqual({ ok: 0, error: 2 });
    await secret.swap(first.dir);
    await certificate.poll();
    expect(certificate.reloads).toEqual({ ok: 0, error: 2 });
    expect(certificate.value.fingerprint).toBe(first.fingerprint);
  });

  it('serves a certificate that expired or expires within 14 days, warning at load and at reload; one valid longer without', async () => {
    const day = 24 * 3600_000;
    const [valid, expired] = await Promise.all([
      selfSigned(join(root, 'valid'), 'valid', 30),
      selfSignedBetween(join(root, 'expired'), new Date(Date.now() - 3 * day), new Date(Date.now() - 2 * day), 'expired'),
    ]);
    const secret = await mounted('expiry', valid);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const warnings = () =>
      lines
        .map((line) => JSON.parse(line) as { level: number; msg: string; fingerprint: string })
        .filter((l) => l.level === 40)
        .map((l) => `${l.fingerprint} ${l.msg}`);
    certificate = await open(secret.dir, logger);
    expect(warnings()).toEqual([]);

    await secret.swap(first.dir); // valid for a day
    await certificate.poll();
    expect(warnings()).toEqual([`${first.fingerprint} tls: certificate expires in less than a day; renew it`]);

    await secret.swap(expired.dir);
    await certificate.poll();
    expect(certificate.value.fingerprint).toBe(expired.fingerprint);
    const expiredWarning = `${expired.fingerprint} tls: certificate expired; it is still served, and clients that check dates refuse it`;
    expect(warnings().at(-1)).toBe(expiredWarning);
    certificate.close();

    lines.length = 0;
    certificate = await open(secret.dir, logger);
    expect(certificate.value.fingerprint).toBe(expired.fingerprint);
    expect(warnings()).toEqual([expiredWarning]);
  });

  it('refuses to start on a pair it cannot use', async () => {
    await expect(
      openServerCertificate({
        certFile: first.certFile,
        keyFile: second.keyFile,
        maxVersion: 'TLSv1.3',
        logger: pino({ level: 'silent' }),
        intervalMs: 60_000,
      }),
    ).rejects.toThrow('--tls-key-file is not the key of the first certificate in --tls-cert-file');
  });
});
