// Authorization with real clients against the rtmpd process: ffmpeg
// publishing and playing, rtmpdump (librtmp) playing, with a valid key, a
// wrong one, an expired signed URL, a JWT with a bad signature, and a
// callback that says no, times out or is down. Every refusal comes before
// Start and ends the client on its first connection (no reconnect loop); a
// key withdrawn from the mounted directory ends the live publisher.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSIONS_CLAIM } from '../src/auth/jwt.ts';
import { signedQuery } from '../src/auth/signed-url.ts';
import {
  errorLogLines,
  metric,
  publishTestPattern,
  runCommand,
  runFfmpeg,
  serverEntry,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';

const API_TOKEN = 'test-api-token-0123456789';
let server: RunningServer;
let dir: string;
let jwtKey: CryptoKey;
const helpers: Server[] = [];

/** A real HTTP server in the test process (the JWKS endpoint, the authorization callback). */
async function httpHelper(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const helper = createServer(handler);
  helpers.push(helper);
  await new Promise<void>((resolve) => helper.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(helper.address() as AddressInfo).port}`;
}

/** ffmpeg publishing a small test pattern: what a refused encoder runs into. */
const tryPublish = (url: string) =>
  runFfmpeg([
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=160x120:rate=10',
    '-t',
    '20',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-f',
    'flv',
    url,
  ]);

/** Runs a refused client to its end; returns how it exited, how long it took and how many connections it opened. */
async function refusedRun(run: () => Promise<{ code: number | null; stderr: string }>) {
  const before = await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"');
  const started = Date.now();
  const { code, stderr } = await run();
  const connections = (await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"')) - before;
  return { code, stderr, ms: Date.now() - started, connections };
}

const ffmpegPublishRefused = (url: string) =>
  refusedRun(async () => {
    const publisher = tryPublish(url);
    return { code: await publisher.exited, stderr: publisher.stderr() };
  });
const ffmpegPlayRefused = (url: string) =>
  refusedRun(() =>
    runCommand('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', url, '-t', '2', '-f', 'null', '-'], 20_000),
  );
const rtmpdumpRefused = (url: string) =>
  refusedRun(() => runCommand('rtmpdump', ['--live', '-r', url, '-o', '/dev/null', '-B', '2'], 20_000));

beforeAll(async () => {
  dir = await tempDir('rtmpd-auth-it-');
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys', 'cam1'), 'pub-secret\n');
  await writeFile(join(dir, 'keys', 'cam2'), 'other-secret\n');
  await writeFile(join(dir, 'hmac.key'), 'hmac-secret\n');
  await writeFile(join(dir, 'api-tokens'), `${API_TOKEN}\n`);
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  jwtKey = privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
  const jwksUrl = await httpHelper((_req, res) => res.end(jwks));
  // The callback service: yes for key "ok", no for "no", and no answer at all for "slow".
  const hookUrl = await httpHelper((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const { key } = JSON.parse(body) as { key: string };
      if (key === 'slow') return;
      res.statusCode = key === 'ok' ? 200 : 403;
      res.end();
    });
  });
  const rules = [
    { app: 'keys', method: 'keys', keys: join(dir, 'keys') },
    { app: 'signed', method: 'signed', secretFile: join(dir, 'hmac.key') },
    { app: 'jwt', method: 'jwt', jwksUrl: `${jwksUrl}/jwks.json` },
    { app: 'hook', method: 'callback', url: `${hookUrl}/on_publish`, timeoutMs: 500, cacheSeconds: 0 },
    { app: 'down', method: 'callback', url: 'http://127.0.0.1:1/on_publish', timeoutMs: 500 },
  ];
  server = await startServer(['--auth-rules', JSON.stringify(rules), '--api-token-file', join(dir, 'api-tokens')]);
});

afterAll(async () => {
  await server?.stop();
  stopAll();
  for (const helper of helpers) {
    helper.closeAllConnections();
    helper.close();
  }
});

describe('keys from a mounted directory', () => {
  it('admit the right secret for ffmpeg and rtmpdump; a wrong one ends each client on its first connection', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('keys', 'cam1?secret=pub-secret'), { seconds: 60, size: '320x240' });
    await waitForStream(server, 'rtmp/keys/cam1');
    const out = join(dir, 'dump.flv');
    const played = await runCommand(
      'rtmpdump',
      ['--live', '-r', server.rtmpUrl('keys', 'cam1?secret=pub-secret'), '-o', out, '-B', '2'],
      3000,
    );
    expect(played.stderr).toMatch(/Connected/);
    expect((await import('node:fs')).statSync(out).size).toBeGreaterThan(10_000);

    const wrongPublish = await ffmpegPublishRefused(server.rtmpUrl('keys', 'cam2?secret=pub-secret'));
    expect(wrongPublish).toMatchObject({ code: 1, connections: 1 });
    expect(wrongPublish.stderr).toMatch(/Server error: publishing keys\/cam2 needs the stream key's \?secret= \(bad secret\)/);
    const noSecret = await ffmpegPublishRefused(server.rtmpUrl('keys', 'cam2'));
    expect(noSecret).toMatchObject({ code: 1, connections: 1 });
    const wrongPlay = await rtmpdumpRefused(server.rtmpUrl('keys', 'cam1?secret=guess'));
    expect(wrongPlay).toMatchObject({ code: 1, connections: 1 });
    expect(wrongPlay.ms).toBeLessThan(5000); // closed by the server, not librtmp's 30 s timeout
    const wrongFfplay = await ffmpegPlayRefused(server.rtmpUrl('keys', 'cam1?secret=guess'));
    expect(wrongFfplay).toMatchObject({ code: 1, connections: 1 });
    const flv = await fetch(server.httpUrl('/keys/cam1.flv?secret=guess'));
    expect(flv.status).toBe(403);
    expect(await flv.json()).toMatchObject({ error: { code: 'bad_secret' } });
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="bad_secret"')).toBe(1);
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="missing_credentials"')).toBe(1);

    // Withdrawing cam1's secret from the directory ends the live publisher within seconds.
    const changed = Date.now();
    await writeFile(join(dir, 'keys', 'cam1'), 'rotated-secret\n');
    await publisher.exited;
    expect(Date.now() - changed).toBeLessThan(5000);
    expect(await metric(server, 'rtmpd_auth_sessions_ended_total', 'reason="revoked"')).toBe(1);
    expect(server.logs.map((l) => JSON.stringify(l)).join('\n')).not.toMatch(/pub-secret|guess|rotated-secret/);
  });
});

describe('signed URLs', () => {
  it('admit a fresh one minted by rtmpd sign and refuse an expired one, for ffmpeg and rtmpdump', async () => {
    const minted = await runCommand(process.execPath, [
      serverEntry(),
      'sign',
      '--secret-file',
      join(dir, 'hmac.key'),
      '--app',
      'signed',
      '--key',
      'cam1',
      '--url',
      `rtmp://127.0.0.1:${server.rtmpPort}`,
    ]);
    expect(minted.code).toBe(0);
    const publisher = tryPublish(minted.stdout.trim());
    await waitForStream(server, 'rtmp/signed/cam1');
    publisher.child.kill('SIGINT');

    const expires = Math.floor(Date.now() / 1000) - 60;
    const expiredPublish = `cam2?${signedQuery('hmac-secret', { action: 'publish', app: 'signed', key: 'cam2', expires })}`;
    const expiredPlay = `cam1?${signedQuery('hmac-secret', { action: 'play', app: 'signed', key: 'cam1', expires })}`;
    expect(await ffmpegPublishRefused(server.rtmpUrl('signed', expiredPublish))).toMatchObject({ code: 1, connections: 1 });
    expect(await rtmpdumpRefused(server.rtmpUrl('signed', expiredPlay))).toMatchObject({ code: 1, connections: 1 });
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="expired"')).toBe(1);
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="play",reason="expired"')).toBe(1);
  });
});

describe('JWT from a JWKS URL', () => {
  const jwt = (key: CryptoKey) =>
    new SignJWT({ [PERMISSIONS_CLAIM]: [{ action: 'publish', app: 'jwt' }] })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(key);

  it('admits a token signed by the JWKS key and refuses a bad signature', async () => {
    const publisher = tryPublish(server.rtmpUrl('jwt', `cam1?jwt=${await jwt(jwtKey)}`));
    await waitForStream(server, 'rtmp/jwt/cam1');
    publisher.child.kill('SIGINT');
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const forged = await ffmpegPublishRefused(server.rtmpUrl('jwt', `cam2?jwt=${await jwt(stranger)}`));
    expect(forged).toMatchObject({ code: 1, connections: 1 });
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="bad_token"')).toBe(1);
  });
});

describe('HTTP callback', () => {
  it('admits what it allows and fails closed when it says no, times out or is down', async () => {
    const publisher = tryPublish(server.rtmpUrl('hook', 'ok'));
    await waitForStream(server, 'rtmp/hook/ok');
    publisher.child.kill('SIGINT');
    expect(await ffmpegPublishRefused(server.rtmpUrl('hook', 'no'))).toMatchObject({ code: 1, connections: 1 });
    const slow = await ffmpegPublishRefused(server.rtmpUrl('hook', 'slow'));
    expect(slow).toMatchObject({ code: 1, connections: 1 });
    expect(await ffmpegPublishRefused(server.rtmpUrl('down', 'cam1'))).toMatchObject({ code: 1, connections: 1 });
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="callback_denied"')).toBe(1);
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="callback_failed"')).toBe(2);
  });
});

describe('the API', () => {
  it('answers 401 on protected routes without a token, and kicks a publisher with one', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('keys', 'cam2?secret=other-secret'), { seconds: 60, size: '320x240' });
    await waitForStream(server, 'rtmp/keys/cam2');
    const path = '/api/v1/rtmp/streams/rtmp%2Fkeys%2Fcam2?ban_seconds=60';
    const anonymous = await fetch(server.httpUrl(path), { method: 'DELETE' });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const kicked = await fetch(server.httpUrl(path), { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(kicked.status).toBe(200);
    await publisher.exited;
    // Banned for a minute: the same encoder is refused before Start.
    expect(await ffmpegPublishRefused(server.rtmpUrl('keys', 'cam2?secret=other-secret'))).toMatchObject({ code: 1, connections: 1 });
    expect(await metric(server, 'rtmpd_auth_refusals_total', 'action="publish",reason="revoked"')).toBe(1);
  });
});

describe('files the rules and the API name', () => {
  // A key store or token file that is not there is the user's to fix, as a bad flag is: one line, exit 2, no stack.
  it.each([
    [
      'a key store',
      (missing: string) => [
        '--auth-rules',
        JSON.stringify([
          { method: 'open', app: 'o' },
          { method: 'keys', keys: missing },
        ]),
      ],
      '--auth-rules [1] (keys)',
    ],
    ['an API token file', (missing: string) => ['--api-token-file', missing], '--api-token-file'],
  ])('refuses to start on %s that cannot be read, in one line naming the option', async (_, flags, option) => {
    const missing = join(dir, 'not-there');
    const { code, stdout } = await runCommand(process.execPath, [
      serverEntry(),
      '--rtmp-bind',
      '127.0.0.1:0',
      '--http-bind',
      '127.0.0.1:0',
      ...flags(missing),
    ]);
    expect(code).toBe(2);
    const fatal = errorLogLines(stdout);
    expect(fatal).toEqual([
      { level: 60, time: expect.any(Number), service: 'rtmpd', msg: `${option} ${missing}: cannot read it (ENOENT)` },
    ]);
  });
});
