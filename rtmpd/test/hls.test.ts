// HLS and Low-Latency HLS read back by real clients: ffprobe and ffmpeg on
// the playlist URL, the playlists checked against RFC 8216 rules, blocking
// reloads and preload hints, headers a browser on another origin needs.
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HlsPlayer } from '../../hack/bench/hls-player.ts';
import { HlsMuxer, MAX_CLIENTS } from '../src/hls/muxer.ts';
import { enhancedHevcTags, hevcAnnexB } from './support/enhanced-hevc.ts';
import { expectContinuity, expectValidLivePlaylist, parsePlaylist, peakSegmentBitRate, type ParsedPlaylist } from './support/m3u8.ts';
import {
  probe,
  publishTestPattern,
  runCommand,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer([
    '--hls-segment-seconds',
    '1',
    '--hls-idle-timeout-seconds',
    '5',
    '--hls-rules',
    JSON.stringify([{ app: 'll', lowLatency: true }]),
    '--recording-enabled',
    'false',
    '--snapshot-enabled',
    'false',
  ]);
});

afterAll(async () => {
  await server?.stop();
  stopAll();
});

async function playlist(app: string, key: string, query = ''): Promise<{ res: Response; playlist: ParsedPlaylist }> {
  const res = await fetch(server.httpUrl(`/${app}/${key}/index.m3u8${query}`));
  expect(res.status, await res.clone().text()).toBe(200);
  return { res, playlist: parsePlaylist(await res.text()) };
}

/** hls/server.ts's PLAYER_WINDOW_MS: the HLS player estimate counts the clients of the last 10 s. */
const PLAYER_WINDOW_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HLS (fMP4) of an H.264/AAC stream from ffmpeg', () => {
  it('serves a playlist ffprobe and ffmpeg read with the right codecs, by the RFC 8216 rules, with cache and CORS headers', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'cam'), { seconds: 40 });
    await waitForStream(server, 'rtmp/live/cam');
    const first = await playlist('live', 'cam');
    expect(first.res.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    expect(first.res.headers.get('cache-control')).toBe('no-cache');
    expect(first.res.headers.get('access-control-allow-origin')).toBe('*');
    expectValidLivePlaylist(first.playlist);
    expect(first.playlist.partTarget).toBeUndefined();

    const streams = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fcam')).then((r) => r.json());
    expect(streams).toMatchObject({ hls_url: '/live/cam/index.m3u8', players: { hls: 1 } });

    const segment = await fetch(server.httpUrl(`/live/cam/${first.playlist.segments[0]!.uri}`));
    expect(segment.status).toBe(200);
    expect(segment.headers.get('content-type')).toBe('video/mp4');
    expect(segment.headers.get('cache-control')).toContain('immutable');
    expect(segment.headers.get('access-control-allow-origin')).toBe('*');

    const preflight = await fetch(server.httpUrl('/live/cam/index.m3u8'), {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://other.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization');

    const url = server.httpUrl('/live/cam/index.m3u8');
    const streamsProbed = await probe(url);
    expect(streamsProbed.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(streamsProbed.find((s) => s.codec_type === 'video')).toMatchObject({ width: 640, height: 360 });
    const decoded = await runCommand('ffmpeg', ['-v', 'error', '-i', url, '-t', '3', '-f', 'null', '-'], 30_000);
    expect(decoded.code, decoded.stderr).toBe(0);

    await sleep(2500);
    const later = await playlist('live', 'cam');
    expectValidLivePlaylist(later.playlist);
    expectContinuity(first.playlist, later.playlist);
    expect(later.playlist.mediaSequence + later.playlist.segments.length).toBeGreaterThan(
      first.playlist.mediaSequence + first.playlist.segments.length,
    );

    publisher.child.kill('SIGKILL');
    await sleep(500);
    const ended = await playlist('live', 'cam');
    expect(ended.playlist.ended).toBe(true);
    // The playlist goes once its stream has been gone for --hls-idle-timeout-seconds.
    await sleep(6500);
    const gone = await fetch(server.httpUrl('/live/cam/index.m3u8'));
    expect(gone.status).toBe(404);
    expect(gone.headers.get('access-control-allow-origin')).toBe('*');
    expect(await gone.json()).toMatchObject({ error: { code: 'stream_not_found' } });
  });

  it('gives the multivariant playlist the peak segment bit rate (RFC 8216) as BANDWIDTH and the average as AVERAGE-BANDWIDTH', async () => {
    // Noise in its 6th and 7th seconds: those segments carry many times the bits of the others.
    const publisher = publishTestPattern(server.rtmpUrl('live', 'vbr'), {
      seconds: 40,
      size: '320x180',
      videoFilter: "noise=alls=40:allf=t+u:enable='between(t,5,7)'",
    });
    await waitForStream(server, 'rtmp/live/vbr');
    const master = async () => (await fetch(server.httpUrl('/live/vbr/master.m3u8'))).text();
    const attribute = (text: string, name: string) => Number(new RegExp(`[:,]${name}=(\\d+)`).exec(text)?.[1]);
    // Asked before its HLS has a segment (this request starts it), it is answered once the first is made
    // (players read it once), with both rates from it: the test pattern's few hundred kbit/s.
    const early = await master();
    expect(attribute(early, 'AVERAGE-BANDWIDTH')).toBeGreaterThan(50_000);
    expect(attribute(early, 'BANDWIDTH')).toBeGreaterThanOrEqual(attribute(early, 'AVERAGE-BANDWIDTH'));

    // Read as a player does, every segment since the first, until the master was read between two playlists
    // with the same last segment, after the noise.
    // Each with the target duration of the first playlist that lists it (the target only grows).
    const segments = new Map<number, { bits: number; seconds: number; targetSeconds: number }>();
    let text: string | undefined;
    while (!text) {
      const before = (await playlist('live', 'vbr')).playlist;
      for (const { msn, uri, duration } of before.segments) {
        if (segments.has(msn)) continue;
        const bytes = (await (await fetch(server.httpUrl(`/live/vbr/${uri}`))).arrayBuffer()).byteLength;
        segments.set(msn, { bits: bytes * 8, seconds: duration, targetSeconds: before.targetDuration });
      }
      const read = await master();
      const after = (await playlist('live', 'vbr')).playlist;
      if (segments.size >= 10 && after.segments.at(-1)!.msn === before.segments.at(-1)!.msn) text = read;
      else await sleep(250);
    }
    publisher.child.kill('SIGKILL');
    expect([...segments.keys()]).toEqual([...Array(segments.size).keys()]);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const peak = peakSegmentBitRate([...segments.values()]);
    const average = sum([...segments.values()].map((s) => s.bits)) / sum([...segments.values()].map((s) => s.seconds));
    expect(peak).toBeGreaterThan(2 * average);
    // EXTINF has three decimals.
    expect(attribute(text, 'BANDWIDTH') / peak).toBeCloseTo(1, 2);
    expect(attribute(text, 'AVERAGE-BANDWIDTH') / average).toBeCloseTo(1, 2);
  });

  it('answers 404 for a stream that is not live and 400 for a bad name, as JSON', async () => {
    const missing = await fetch(server.httpUrl('/live/nobody/index.m3u8'));
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'stream_not_found' } });
    expect((await fetch(server.httpUrl('/live/-bad/index.m3u8'))).status).toBe(400);
    expect((await fetch(server.httpUrl('/api/x/index.m3u8'))).status).toBe(404);
  });
});

describe('Low-Latency HLS', () => {
  it('lists parts within the part target, blocks a reload until the asked part exists and answers the preload hint when it is written', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('ll', 'cam'), { seconds: 40 });
    try {
      await waitForStream(server, 'rtmp/ll/cam');
      const { playlist: first } = await playlist('ll', 'cam');
      expectValidLivePlaylist(first);
      expect(first.version).toBe(9);
      expect(first.partTarget).toBeGreaterThanOrEqual(0.2);
      expect(first.preloadHint).toMatch(/^part-/);

      // Blocking reload: the next segment, which does not exist yet, is waited for.
      const nextMsn = first.mediaSequence + first.segments.length;
      const started = performance.now();
      const { playlist: blocked } = await playlist('ll', 'cam', `?_HLS_msn=${nextMsn}&_HLS_part=0`);
      expect(performance.now() - started).toBeGreaterThan(20);
      expectValidLivePlaylist(blocked);
      expectContinuity(first, blocked);
      const hasIt =
        blocked.segments.some((s) => s.msn === nextMsn) ||
        (blocked.pendingParts.length > 0 && blocked.mediaSequence + blocked.segments.length === nextMsn);
      expect(hasIt, blocked.text).toBe(true);

      // The preload hint's part is answered as soon as it is written.
      const hinted = await fetch(server.httpUrl(`/ll/cam/${blocked.preloadHint}`));
      expect(hinted.status).toBe(200);
      const bytes = Buffer.from(await hinted.arrayBuffer());
      expect(bytes.toString('latin1', 4, 8)).toBe('moof');

      expect((await fetch(server.httpUrl(`/ll/cam/index.m3u8?_HLS_msn=${nextMsn + 50}`))).status).toBe(400);
      expect((await fetch(server.httpUrl('/ll/cam/index.m3u8?_HLS_part=1'))).status).toBe(400);
      expect((await fetch(server.httpUrl('/live/other/index.m3u8?_HLS_msn=abc'))).status).toBe(400);

      const probed = await probe(server.httpUrl('/ll/cam/index.m3u8'));
      expect(probed.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });
});

describe('HLS of HEVC over Enhanced RTMP', () => {
  it('plays back as hevc through ffprobe', async () => {
    const tags = await enhancedHevcTags(await hevcAnnexB(640, 360, 2));
    const client = await RtmpClient.connect(server.rtmpUrl('live', 'hevc'));
    try {
      await client.publish();
      client.sendMetadata({ width: 640, height: 360, framerate: 25, videocodecid: 'hvc1' });
      // The segmenter starts with the first playlist request and needs keyframes after it: send in real time.
      const start = performance.now();
      let sent = 0;
      const pace = setInterval(() => {
        const due = performance.now() - start;
        while (sent < tags.length * 3 && tags[sent % tags.length]!.timestamp + Math.floor(sent / tags.length) * 2000 <= due) {
          const tag = tags[sent % tags.length]!;
          client.sendVideo(tag.timestamp + Math.floor(sent / tags.length) * 2000, tag.body);
          sent++;
        }
      }, 10);
      try {
        await waitForStream(server, 'rtmp/live/hevc');
        const { playlist: hevc } = await playlist('live', 'hevc');
        expectValidLivePlaylist(hevc);
        const probed = await probe(server.httpUrl('/live/hevc/index.m3u8'));
        expect(probed).toEqual([expect.objectContaining({ codec_name: 'hevc', width: 640, height: 360 })]);
      } finally {
        clearInterval(pace);
      }
    } finally {
      client.close();
    }
  });
});

describe('the HLS player estimate under a client that changes its user agent', () => {
  /** Requests the playlist once per user agent, 16 at a time over keep-alive connections. */
  async function pollAs(path: string, userAgents: string[]): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < userAgents.length) {
        const userAgent = userAgents[next++]!;
        await new Promise<void>((resolve, reject) =>
          get(server.httpUrl(path), { agent, headers: { 'User-Agent': userAgent } }, (res) => {
            expect(res.statusCode).toBe(200);
            res.resume().on('end', resolve);
          }).on('error', reject),
        );
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
  }

  it('tells clients apart by the start of their user agent', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'agents'), { seconds: 40 });
    await waitForStream(server, 'rtmp/live/agents');
    // 8 KB user agents that differ only at their end: one client, not 50 kept whole; and 100 others.
    const userAgents = [
      ...Array.from({ length: 50 }, (_, i) => `${'a'.repeat(8000)} ${i}`),
      ...Array.from({ length: 100 }, (_, i) => `agent ${i}`),
    ];
    // The estimate counts the clients of its last 10 s (hls/server.ts): a batch that took longer
    // on a loaded machine proves nothing, and is sent again (the same clients).
    for (;;) {
      const sent = performance.now();
      await pollAs('/live/agents/index.m3u8', userAgents);
      const { players } = await waitForStream(server, 'rtmp/live/agents');
      if (performance.now() - sent > PLAYER_WINDOW_MS) continue;
      expect(players.hls).toBe(101);
      break;
    }
    publisher.child.kill('SIGKILL');
  });

  // The bound on its own clock: over HTTP, MAX_CLIENTS + 50 requests must all land within the
  // estimate's 10 s window, which a loaded machine does not do (6,603 of them were counted).
  it('keeps at most 10,000 a stream, the latest', () => {
    const muxer = new HlsMuxer({
      variant: 'fmp4',
      lowLatency: false,
      segmentSeconds: 1,
      partSeconds: 0.2,
      windowSegments: 6,
      maxBytes: 1 << 20,
    });
    // One client a millisecond.
    for (let at = 0; at < MAX_CLIENTS + 50; at++) muxer.touch(`127.0.0.1 agent ${at}`, at);
    const now = MAX_CLIENTS + 50;
    expect(muxer.players(60_000, now)).toBe(MAX_CLIENTS);
    // The first 50 went: a window that reaches back to the 52nd counts one less.
    expect(muxer.players(MAX_CLIENTS - 1, now)).toBe(MAX_CLIENTS - 1);
  });
});

describe('bytes sent to HLS players on /metrics', () => {
  /** rtmpd_stream_sent_bytes_total of app/key (with source="publisher") for its HLS players, from /metrics. */
  async function sentToHlsPlayers(app: string, key: string): Promise<number> {
    const text = await (await fetch(server.httpUrl('/metrics'))).text();
    const line = `rtmpd_stream_sent_bytes_total{app="${app}",key="${key}",source="publisher",subscriber="hls-player"} `;
    const at = text.indexOf(`\n${line}`);
    return at < 0 ? 0 : Number(text.slice(at + 1 + line.length, text.indexOf('\n', at + 1)));
  }

  /** Until the player's count has not moved for a while: its last request (a blocking reload, too) has been answered. */
  async function settled(player: HlsPlayer): Promise<number> {
    for (let bytes = -1; bytes !== player.bytes; await sleep(1500)) bytes = player.bytes;
    return player.bytes;
  }

  it.each([
    ['live', 'regular HLS'],
    ['ll', 'Low-Latency HLS'],
  ])("are what the load generator's player got, playlists and media, over %s (%s), and not a HEAD or a 404", async (app) => {
    const key = 'counted';
    const publisher = publishTestPattern(server.rtmpUrl(app, key), { seconds: 30 });
    try {
      await waitForStream(server, `rtmp/${app}/${key}`);
      const errors: Error[] = [];
      const url = server.httpUrl(`/${app}/${key}/index.m3u8`);
      const player = new HlsPlayer({
        playlistUrl: url,
        lowLatency: app === 'll',
        onVideoSample: () => undefined,
        onError: (e) => errors.push(e),
      });
      await player.start();
      await sleep(5000);
      player.stop();
      const got = await settled(player);
      expect(errors).toEqual([]);
      expect(got).toBeGreaterThan(50_000);
      expect(await sentToHlsPlayers(app, key)).toBe(got);

      // The init section the playlist names, as a browser's player asks for it first.
      const { playlist: listed } = await playlist(app, key);
      const listedBytes = Buffer.byteLength(listed.text);
      const init = await fetch(server.httpUrl(`/${app}/${key}/${listed.map}`));
      const initBytes = (await init.arrayBuffer()).byteLength;
      expect(initBytes).toBeGreaterThan(0);
      await sleep(200);
      expect(await sentToHlsPlayers(app, key)).toBe(got + listedBytes + initBytes);

      // Neither a HEAD (no body sent) nor a refusal is a byte sent to a player.
      const head = await fetch(server.httpUrl(`/${app}/${key}/${listed.segments.at(-1)!.uri}`), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
      expect((await fetch(server.httpUrl(`/${app}/${key}/seg-0000000000000000-0.m4s`))).status).toBe(404);
      await sleep(200);
      expect(await sentToHlsPlayers(app, key)).toBe(got + listedBytes + initBytes);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it('are counted under _overflow after the stream ended, when its own series are gone and players still fetch its last segments', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'ending'), { seconds: 30 });
    try {
      await waitForStream(server, 'rtmp/live/ending');
      const live = await playlist('live', 'ending');
      await sleep(200);
      expect(await sentToHlsPlayers('live', 'ending')).toBe(Buffer.byteLength(live.playlist.text));
    } finally {
      publisher.child.kill('SIGKILL');
    }
    while ((await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fending'))).status !== 404) await sleep(100);
    const before = await sentToHlsPlayers('_overflow', '_overflow');

    // The playlist stays for --hls-idle-timeout-seconds (5 here), ended, with the segments it lists.
    const ended = await playlist('live', 'ending');
    expect(ended.playlist.text).toContain('#EXT-X-ENDLIST');
    const segment = await fetch(server.httpUrl(`/live/ending/${ended.playlist.segments.at(-1)!.uri}`));
    expect(segment.status).toBe(200);
    const segmentBytes = (await segment.arrayBuffer()).byteLength;
    await sleep(200);
    expect(await sentToHlsPlayers('live', 'ending')).toBe(0);
    expect(await sentToHlsPlayers('_overflow', '_overflow')).toBe(before + Buffer.byteLength(ended.playlist.text) + segmentBytes);
  });
});

describe('HLS under play rules', () => {
  it("answers a playlist only with the stream key's secret, and its media through the names the playlist gives", async () => {
    const dir = await tempDir('rtmpd-hls-auth-');
    await mkdir(join(dir, 'keys'));
    await writeFile(join(dir, 'keys', 'cam'), 'play-secret\n');
    const rules = [{ app: 'sec', actions: ['play'], method: 'keys', keys: join(dir, 'keys') }, { method: 'open' }];
    const guarded = await startServer([
      '--auth-rules',
      JSON.stringify(rules),
      '--recording-enabled',
      'false',
      '--snapshot-enabled',
      'false',
    ]);
    const publisher = publishTestPattern(guarded.rtmpUrl('sec', 'cam'), { seconds: 30 });
    try {
      await waitForStream(guarded, 'rtmp/sec/cam');
      const refused = await fetch(guarded.httpUrl('/sec/cam/index.m3u8'));
      expect(refused.status).toBe(401);
      expect(refused.headers.get('access-control-allow-origin')).toBe('*');
      expect((await fetch(guarded.httpUrl('/sec/cam/index.m3u8?secret=wrong'))).status).toBe(403);
      const allowed = await fetch(guarded.httpUrl('/sec/cam/index.m3u8?secret=play-secret'));
      expect(allowed.status).toBe(200);
      const listed = parsePlaylist(await allowed.text());
      expect((await fetch(guarded.httpUrl(`/sec/cam/${listed.segments[0]!.uri}`))).status).toBe(200);
    } finally {
      publisher.child.kill('SIGKILL');
      await guarded.stop();
    }
  });
});

describe('HLS in MPEG-TS (--hls-variant mpegts) of an H.264/AAC stream from ffmpeg', () => {
  let ts: RunningServer;
  beforeAll(async () => {
    ts = await startServer([
      '--hls-variant',
      'mpegts',
      '--hls-segment-seconds',
      '1',
      '--hls-rules',
      JSON.stringify([{ app: 'mp4', variant: 'fmp4' }]),
      '--recording-enabled',
      'false',
      '--snapshot-enabled',
      'false',
    ]);
  });
  afterAll(() => ts?.stop());

  it('serves .ts segments without EXT-X-MAP that ffprobe and ffmpeg read, continuous across reloads; a rule keeps fMP4', async () => {
    const publisher = publishTestPattern(ts.rtmpUrl('live', 'tv'), { seconds: 30, size: '320x180' });
    try {
      await waitForStream(ts, 'rtmp/live/tv');
      const url = ts.httpUrl('/live/tv/index.m3u8');
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const first = parsePlaylist(await res.text());
      expectValidLivePlaylist(first);
      expect(first.version).toBe(3);
      expect(first.segments.every((s) => /^seg-[0-9a-f]{16}-\d+\.ts$/.test(s.uri))).toBe(true);

      const segment = await fetch(ts.httpUrl(`/live/tv/${first.segments[0]!.uri}`));
      expect(segment.headers.get('content-type')).toBe('video/mp2t');
      const bytes = Buffer.from(await segment.arrayBuffer());
      expect(bytes.length % 188).toBe(0);
      expect(bytes[0]).toBe(0x47);
      const dir = await tempDir('hls-ts-');
      await writeFile(join(dir, 'seg.ts'), bytes);
      // One segment alone: its own tables, both tracks.
      expect((await probe(join(dir, 'seg.ts'))).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);

      expect((await probe(url)).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      const decoded = await runCommand('ffmpeg', ['-v', 'error', '-i', url, '-t', '4', '-f', 'null', '-'], 30_000);
      expect(decoded.code, decoded.stderr).toBe(0);
      expect(decoded.stderr).toBe('');

      const later = parsePlaylist(await (await fetch(url)).text());
      expectValidLivePlaylist(later);
      expectContinuity(first, later);
    } finally {
      publisher.child.kill('SIGKILL');
    }

    const mp4 = publishTestPattern(ts.rtmpUrl('mp4', 'tv'), { seconds: 30, size: '320x180' });
    try {
      await waitForStream(ts, 'rtmp/mp4/tv');
      const res = await fetch(ts.httpUrl('/mp4/tv/index.m3u8'));
      const fmp4 = parsePlaylist(await res.text());
      expectValidLivePlaylist(fmp4);
      expect(fmp4.segments[0]!.uri).toMatch(/\.m4s$/);
    } finally {
      mp4.child.kill('SIGKILL');
    }
  });
});
