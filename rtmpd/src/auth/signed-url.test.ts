import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration, sign } from './sign-command.ts';
import { signedQuery, verifySigned, type SignedRequest } from './signed-url.ts';

const now = 1_800_000_000;
const request = (query: string, over: Partial<SignedRequest> = {}): SignedRequest => ({
  action: 'publish',
  app: 'live',
  key: 'cam1',
  params: new URLSearchParams(query),
  clientIp: '203.0.113.7',
  nowSeconds: now,
  ...over,
});

describe('signed URLs', () => {
  const query = signedQuery('s3cr3t', { action: 'publish', app: 'live', key: 'cam1', expires: now + 60 });

  it('admit the action, app and key they were signed for, until they expire', () => {
    expect(verifySigned(['s3cr3t'], request(query))).toBe('ok');
    // Secret rotation: any current secret verifies.
    expect(verifySigned(['new', 's3cr3t'], request(query))).toBe('ok');
    expect(verifySigned(['s3cr3t'], request(query, { nowSeconds: now + 61 }))).toBe('expired');
    expect(verifySigned(['other'], request(query))).toBe('bad_signature');
    expect(verifySigned(['s3cr3t'], request(query, { action: 'play' }))).toBe('bad_signature');
    expect(verifySigned(['s3cr3t'], request(query, { key: 'cam2' }))).toBe('bad_signature');
    expect(verifySigned(['s3cr3t'], request(query, { app: 'other' }))).toBe('bad_signature');
    expect(verifySigned(['s3cr3t'], request(query.replace(/exp=\d+/, `exp=${now + 3600}`)))).toBe('bad_signature');
    expect(verifySigned(['s3cr3t'], request(''))).toBe('missing_credentials');
    expect(verifySigned(['s3cr3t'], request('exp=abc&sig=x'))).toBe('bad_signature');
  });

  it('bound to an address, admit only that client, and the address cannot be edited out', () => {
    const bound = signedQuery('s3cr3t', { action: 'play', app: 'live', key: 'cam1', expires: now + 60, ip: '203.0.113.7' });
    expect(verifySigned(['s3cr3t'], request(bound, { action: 'play' }))).toBe('ok');
    expect(verifySigned(['s3cr3t'], request(bound, { action: 'play', clientIp: '198.51.100.1' }))).toBe('address_mismatch');
    const stripped = bound.replace(/&?ip=[^&]*/, '');
    expect(verifySigned(['s3cr3t'], request(stripped, { action: 'play', clientIp: '198.51.100.1' }))).toBe('bad_signature');
  });

  it('are minted by rtmpd sign from a secret file', async () => {
    const secretFile = join(await mkdtemp(join(tmpdir(), 'rtmpd-sign-')), 'hmac.key');
    await writeFile(secretFile, 's3cr3t\nprevious\n');
    const name = sign({ argv: ['--secret-file', secretFile, '--app', 'live', '--key', 'cam1', '--expires-in', '1m'], nowSeconds: now });
    expect(name).toBe(`cam1?${query}`);
    const url = sign({
      argv: ['--secret-file', secretFile, '--app', 'live', '--key', 'cam1', '--action', 'play', '--url', 'rtmp://example.com:1935/'],
      nowSeconds: now,
    });
    expect(url).toMatch(/^rtmp:\/\/example\.com:1935\/live\/cam1\?exp=1800003600&sig=[\w-]{43}$/);
    expect(verifySigned(['s3cr3t'], request(new URL(url).search.slice(1), { action: 'play' }))).toBe('ok');
    const flv = sign({
      argv: ['--secret-file', secretFile, '--app', 'live', '--key', 'cam1', '--action', 'play', '--url', 'http://h:8082'],
    });
    expect(flv).toMatch(/^http:\/\/h:8082\/live\/cam1\.flv\?exp=\d+&sig=/);
    expect(() => sign({ argv: ['--app', 'live', '--key', 'cam1'] })).toThrow(/--secret-file, --app and --key are required/);
    expect(() => sign({ argv: ['--secret-file', secretFile, '--app', 'live', '--key', 'a/b'] })).toThrow(/stream key "a\/b"/);
    expect(() => sign({ argv: ['--secret-file', secretFile, '--app', 'live', '--key', 'k', '--expires-in', 'soon'] })).toThrow(
      /--expires-in/,
    );
    const missing = join(dirname(secretFile), 'missing.key');
    expect(() => sign({ argv: ['--secret-file', missing, '--app', 'live', '--key', 'k'] })).toThrow(`cannot read ${missing}: ENOENT`);
    expect(parseDuration('7d')).toBe(604_800);
    expect(parseDuration('90')).toBe(90);
  });
});
