// The authorizer as the RTMP server's admission check, through the real
// server and the project's client: what each method answers is what the
// client hears before any Start, and withdrawn keys end live sessions.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startTestRtmpServer, testClient } from '../../test/support/rtmp-server.ts';
import { until } from '../../test/support/wait.ts';
import type { RtmpClient, StatusInfo } from '../../test/support/rtmp-client.ts';
import { StreamHub } from '../hub/hub.ts';
import { Authorizer, hostOf } from './authorizer.ts';
import { authRulesSchema } from './rules.ts';
import { signedQuery } from './signed-url.ts';

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;

/** An authorizer over `rules` in front of an in-process RTMP server; logs are kept to be searched. */
async function serve(rules: unknown) {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
  const config = { authRules: authRulesSchema.parse(rules) };
  // The authorizer needs the server's hub, and the server needs the authorizer's check.
  const holder: { authorizer?: Authorizer } = {};
  const server = await startTestRtmpServer({}, { admission: [(request) => holder.authorizer!.rtmpCheck(request)], logger });
  const authorizer = await Authorizer.start({ config, hub: server.hub, logger, reloadIntervalMs: 100 });
  holder.authorizer = authorizer;
  onTestFinished(() => authorizer.close());
  return { ...server, authorizer, config, logs: () => lines.join('') };
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rtmpd-auth-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const closed = (client: RtmpClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));
const statuses = (client: RtmpClient) => {
  const seen: StatusInfo[] = [];
  client.on('status', (info) => seen.push(info));
  return seen;
};

describe('authorizer', () => {
  it('keys: admits the right secret, refuses a wrong or missing one with Unauthorized and a close, before Start', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'keys.yaml'), 'cam1: s3cr3t\n');
    const { url, hub, authorizer, logs } = await serve([{ app: 'live', method: 'keys', keys: join(dir, 'keys.yaml') }]);

    const good = await testClient(url('cam1?secret=s3cr3t'));
    await good.publish();
    expect(hub.get('live', 'cam1')).toBeDefined();

    for (const [name, reason] of [
      ['cam2?secret=s3cr3t', 'bad_secret'],
      ['cam1?secret=wrong-guess', 'bad_secret'],
      ['cam1', 'missing_credentials'],
    ] as const) {
      const bad = await testClient(url(name));
      const seen = statuses(bad);
      const gone = closed(bad);
      const refused = await bad.publish().catch((err: unknown) => err);
      expect(codeOf(refused)).toBe('NetStream.Publish.Unauthorized');
      await gone;
      expect(seen.map((s) => s.code)).not.toContain('NetStream.Publish.Start');
      expect(authorizer.stats.refusals[`publish ${reason}`]).toBeGreaterThan(0);
    }
    // Refusals are logged with their reason, never with the secret offered.
    expect(logs()).toMatch(/"reason":"bad_secret"/);
    expect(logs()).not.toMatch(/wrong-guess|s3cr3t/);
  });

  it('keys: a changed key file ends the sessions its withdrawn secrets admitted, publisher and players', async () => {
    const dir = await tempDir();
    const file = join(dir, 'keys.yaml');
    await writeFile(file, 'cam1: [old, new]\ncam2: [pub, view]\n');
    const { url, hub, authorizer } = await serve([{ method: 'keys', keys: file }]);
    const publisher = await testClient(url('cam1?secret=old'));
    await publisher.publish();
    const other = await testClient(url('cam2?secret=pub'));
    await other.publish();
    const player = await testClient(url('cam2?secret=view'));
    const playerStatus = statuses(player);
    const stayingPlayer = await testClient(url('cam2?secret=pub'));
    await player.play();
    await stayingPlayer.play();
    const publisherStatus = statuses(publisher);

    await writeFile(file, 'cam1: new\ncam2: pub\n');
    await Promise.all([closed(publisher), closed(player)]);
    expect(publisherStatus.map((s) => s.code)).toContain('NetStream.Publish.Unauthorized');
    expect(playerStatus.map((s) => s.code)).toContain('NetStream.Play.Unauthorized');
    expect(hub.get('live', 'cam1')).toBeUndefined();
    await until(() => hub.get('live', 'cam2')?.subscriberCount === 1);
    expect(authorizer.stats.ended.revoked).toBe(2);
    // The publisher may come back with the secret that stayed.
    const back = await testClient(url('cam1?secret=new'));
    await back.publish();
  });

  it('signed: the query of the stream name or of the tcUrl, bound to the client address when asked', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'hmac'), 'k3y\n');
    const { url, hub } = await serve([{ method: 'signed', secretFile: join(dir, 'hmac') }]);
    const expires = Math.floor(Date.now() / 1000) + 60;
    const inName = await testClient(url(`cam1?${signedQuery('k3y', { action: 'publish', app: 'live', key: 'cam1', expires })}`));
    await inName.publish();
    const tcUrl = url('').replace(/\/$/, '');
    const q = signedQuery('k3y', { action: 'publish', app: 'live', key: 'cam2', expires, ip: '127.0.0.1' });
    const inTcUrl = await testClient(url('cam2'), { tcUrl: `${tcUrl}?${q}` });
    await inTcUrl.publish();
    expect(hub.size).toBe(2);
    const expired = signedQuery('k3y', { action: 'publish', app: 'live', key: 'cam3', expires: expires - 120 });
    const late = await testClient(url(`cam3?${expired}`));
    expect(codeOf(await late.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.Unauthorized');
  });

  it("refuses a malformed credential as its method's bad one, before any lookup or signature check", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'keys.yaml'), 'cam1: s3cr3t\n');
    await writeFile(join(dir, 'hmac'), 'k3y\n');
    await writeFile(join(dir, 'jwt.key'), 'a-shared-jwt-secret-of-some-length-0123456789\n');
    const { url, authorizer, logs } = await serve([
      { key: 'keyed-*', method: 'keys', keys: join(dir, 'keys.yaml') },
      { key: 'signed-*', method: 'signed', secretFile: join(dir, 'hmac') },
      { key: 'jwt-*', method: 'jwt', keyFile: join(dir, 'jwt.key') },
    ]);
    const expires = Math.floor(Date.now() / 1000) + 60;
    // Signed as it is, but not an address: refused as a bad signature rather than checked against the client's.
    const notAnAddress = signedQuery('k3y', { action: 'publish', app: 'live', key: 'signed-2', expires, ip: 'not-an-address' });
    for (const [name, reason, detail] of [
      [`keyed-1?secret=${'s'.repeat(1025)}`, 'bad_secret', 'malformed secret'],
      [`signed-1?exp=${'9'.repeat(13)}&sig=${'a'.repeat(43)}`, 'bad_signature', undefined],
      [`signed-2?${notAnAddress}`, 'bad_signature', undefined],
      [`jwt-1?jwt=${'a'.repeat(8193)}`, 'bad_token', 'malformed jwt'],
      ['jwt-2?jwt=not%20a%20jwt', 'bad_token', 'malformed jwt'],
    ] as const) {
      const client = await testClient(url(name));
      const refused = await client.publish().catch((err: unknown) => err);
      expect(codeOf(refused), name).toBe('NetStream.Publish.Unauthorized');
      const refusal = `"key":"${name.split('?')[0]}"[^\n]*"reason":"${reason}"${detail ? `,"detail":"${detail}"` : ''}`;
      expect(logs(), name).toMatch(new RegExp(refusal));
    }
    expect(authorizer.stats.refusals).toEqual({ 'publish bad_secret': 1, 'publish bad_signature': 2, 'publish bad_token': 2 });
  });

  it('logs at most 10 refused plays of a player that retries at once, RTMP or HLS, and counts every one', async () => {
    const { url, authorizer, logs } = await serve([{ method: 'open', actions: ['publish'] }]);
    for (let i = 0; i < 12; i++) {
      const player = await testClient(url('cam'));
      expect(codeOf(await player.play().catch((err: unknown) => err))).toBe('NetStream.Play.Unauthorized');
      player.close();
    }
    const hls = {
      action: 'play',
      protocol: 'hls',
      tls: false,
      app: 'live',
      key: 'cam',
      params: new URLSearchParams(),
      clientIp: '127.0.0.1',
    } as const;
    for (let i = 0; i < 30; i++) await authorizer.authorize({ ...hls, signal: AbortSignal.timeout(1000) });
    expect(authorizer.stats.refusals['play no_matching_rule']).toBe(42);
    const lines = (msg: string) =>
      logs()
        .split('\n')
        .filter((line) => line.includes(`"msg":"${msg}"`)).length;
    expect(lines('auth: play refused')).toBe(10);
    expect(lines('rtmp play refused')).toBe(10);
  });

  it('rules: first match decides, no match refuses; a revocation refuses publishing and ends the live publisher', async () => {
    const { url, hub, authorizer } = await serve([
      { method: 'open', app: 'live', key: 'public-*' },
      { method: 'open', actions: ['play'] },
    ]);
    const publisher = await testClient(url('public-1'));
    await publisher.publish();
    const stray = await testClient(url('private-1'));
    expect(codeOf(await stray.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.Unauthorized');
    expect(authorizer.stats.refusals['publish no_matching_rule']).toBe(1);

    const gone = closed(publisher);
    const seen = statuses(publisher);
    authorizer.revoke('live', 'public-1', 60);
    await gone;
    expect(seen.map((s) => s.code)).toContain('NetStream.Publish.Unauthorized');
    await until(() => hub.size === 0);
    const again = await testClient(url('public-1'));
    expect(codeOf(await again.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.Unauthorized');
    expect(authorizer.stats.refusals['publish revoked']).toBe(1);
    expect(authorizer.unrevoke('live', 'public-1')).toBe(true);
    const after = await testClient(url('public-1'));
    await after.publish();
  });

  it('writes client addresses as IP addresses', () => {
    expect(hostOf('::ffff:10.1.2.3:5000')).toBe('10.1.2.3');
    expect(hostOf('127.0.0.1:1935')).toBe('127.0.0.1');
    expect(hostOf('::1:5000')).toBe('::1');
  });
});

describe('callback rule with failOpen', () => {
  it('lets a play in when the service is down, but not one refused as callback_busy behind a flood', async () => {
    // A service that takes requests and never answers them.
    const held: ServerResponse[] = [];
    const service = createServer((_req, res) => void held.push(res));
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => {
      service.closeAllConnections();
      return new Promise<void>((resolve) => service.close(() => resolve()));
    });
    const start = async (url: string) => {
      const rules = [{ app: 'live', method: 'callback', url, timeoutMs: 10_000, failOpen: true }];
      const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
      const authorizer = await Authorizer.start({
        config: { authRules: authRulesSchema.parse(rules) },
        hub,
        logger: pino({ level: 'silent' }),
      });
      onTestFinished(() => authorizer.close());
      return authorizer;
    };
    const play = (key: string) => ({
      action: 'play' as const,
      protocol: 'http-flv' as const,
      tls: false,
      app: 'live',
      key,
      params: new URLSearchParams(),
      clientIp: '192.0.2.1',
      signal: new AbortController().signal,
    });
    const down = await start('http://127.0.0.1:1/auth');
    expect(await down.authorize(play('k'))).toEqual({ allow: true });
    const flooded = await start(`http://127.0.0.1:${(service.address() as AddressInfo).port}/auth`);
    const flood = Array.from({ length: 64 + 1024 }, (_, i) => flooded.authorize(play(`flood${i}`)));
    await until(() => held.length === 64);
    expect(await flooded.authorize(play('mine'))).toMatchObject({ allow: false, reason: 'callback_busy', status: 403 });
    expect(flooded.stats.refusals).toEqual({ 'play callback_busy': 1 });
    // The service going away fails the flood's requests: failOpen lets those in, the service failed, not the queue.
    service.closeAllConnections();
    service.close();
    expect((await Promise.all(flood)).every((decision) => decision.allow)).toBe(true);
  });
});
