// One server, one ffmpeg publisher (lavfi H.264/AAC), every real client
// reading it back: ffprobe over RTMP and HTTP-FLV, rtmpdump (librtmp),
// the stream API, JPEG snapshots, and a second publisher that must be refused.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  listStreams,
  probe,
  publishTestPattern,
  runCommand,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type Publisher,
  type RunningServer,
} from './support/processes.ts';

let server: RunningServer;
let publisher: Publisher;
const ID = 'rtmp/live/test123';
const API_TOKEN = 'h264-live-api-token';

beforeAll(async () => {
  const tokens = join(await tempDir('rtmpd-h264-'), 'api.tokens');
  await writeFile(tokens, `${API_TOKEN}\n`);
  server = await startServer(['--api-token-file', tokens]);
  publisher = publishTestPattern(server.rtmpUrl('live', 'test123'));
  await waitForStream(server, ID);
});

afterAll(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  stopAll();
});

describe('an ffmpeg H.264/AAC publisher', () => {
  it('is listed with the original fields and its codecs, resolution, frame rate, bitrate and publisher', async () => {
    const [stream] = await listStreams(server, API_TOKEN);
    expect(Object.keys(stream!).slice(0, 4)).toEqual(['stream_id', 'app', 'key', 'start_time']);
    // Without the token the publisher's address is withheld.
    expect((await listStreams(server))[0]!.publisher).toEqual({ protocol: 'rtmp', remote_address: null });
    expect(stream).toMatchObject({
      stream_id: ID,
      app: 'live',
      key: 'test123',
      video: { codec: 'h264', profile: 'High', width: 640, height: 360, fps: 25 },
      audio: { codec: 'aac', profile: 'LC', sample_rate: 44100, channels: 1 },
      recording: true,
      publisher: { protocol: 'rtmp', remote_address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
    });
    expect(stream!.start_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(stream!.bytes_in).toBeGreaterThan(0);
    expect(stream!.bitrate_kbps).toBeGreaterThan(0);
  });

  it('is served by id, URL-encoded as the original documented and unencoded', async () => {
    for (const path of ['/api/v1/rtmp/streams/rtmp%2Flive%2Ftest123', '/api/v1/rtmp/streams/rtmp/live/test123']) {
      const res = await fetch(server.httpUrl(path));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ stream_id: ID, video: { codec: 'h264' } });
    }
  });

  it('plays back over RTMP (ffprobe) with the right codecs and resolution', async () => {
    const streams = await probe(server.rtmpUrl('live', 'test123'));
    expect(streams).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codec_type: 'video', codec_name: 'h264', width: 640, height: 360 }),
        expect.objectContaining({ codec_type: 'audio', codec_name: 'aac' }),
      ]),
    );
  });

  it('plays back over HTTP-FLV (ffprobe) with CORS for browser players', async () => {
    const res = await fetch(server.httpUrl('/live/test123.flv'));
    expect(res.headers.get('content-type')).toBe('video/x-flv');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    await res.body?.cancel();
    const streams = await probe(server.httpUrl('/live/test123.flv'));
    expect(streams).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codec_type: 'video', codec_name: 'h264', width: 640, height: 360 }),
        expect.objectContaining({ codec_type: 'audio', codec_name: 'aac' }),
      ]),
    );
  });

  it('plays back with rtmpdump (librtmp, the stack OBS uses)', async () => {
    const out = join(await tempDir('rtmpd-rtmpdump-'), 'dump.flv');
    const { stderr } = await runCommand('rtmpdump', ['--live', '-r', server.rtmpUrl('live', 'test123'), '-o', out], 3000);
    expect(stderr).toMatch(/Starting Live Stream|Connected/);
    const streams = await probe(out);
    expect(streams).toEqual(expect.arrayContaining([expect.objectContaining({ codec_name: 'h264', width: 640, height: 360 })]));
  });

  it('serves a JPEG snapshot of the last keyframe that ffprobe decodes at the stream resolution', async () => {
    const res = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Ftest123/snapshot'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const path = join(await tempDir('rtmpd-snapshot-'), 'snapshot.jpg');
    await import('node:fs/promises').then((fs) => res.arrayBuffer().then((b) => fs.writeFile(path, Buffer.from(b))));
    expect(await probe(path)).toEqual([expect.objectContaining({ codec_name: 'mjpeg', width: 640, height: 360 })]);
    // The latest keyframe and JPEG are kept under --keyframe-dir.
    await expect
      .poll(() =>
        readFile(join(server.keyframeDir, 'live', 'test123', 'latest.jpg')).then(
          (b) => b.length,
          () => 0,
        ),
      )
      .toBeGreaterThan(0);
    await expect
      .poll(() =>
        readFile(join(server.keyframeDir, 'live', 'test123', 'latest.h264')).then(
          (b) => b.length,
          () => 0,
        ),
      )
      .toBeGreaterThan(0);
  });

  it('refuses a second publisher on the same key while the first goes on, its viewers undisturbed', async () => {
    const before = (await listStreams(server, API_TOKEN))[0]!;
    const viewer = await fetch(server.httpUrl('/live/test123.flv'));
    const reader = viewer.body!.getReader();
    const intruder = publishTestPattern(server.rtmpUrl('live', 'test123'), { seconds: 5 });
    expect(await intruder.exited).not.toBe(0);
    // The first publisher's stream: same start, still growing, and the viewer still receives it.
    let received = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    await reader.cancel();
    expect(received).toBeGreaterThan(10_000);
    const after = (await listStreams(server, API_TOKEN))[0]!;
    expect(after.start_time).toBe(before.start_time);
    expect(after.publisher.remote_address).toBe(before.publisher.remote_address);
    expect(after.bytes_in).toBeGreaterThan(before.bytes_in);
    expect(publisher.child.exitCode).toBeNull();
  });

  it('counts its players by protocol', async () => {
    const viewer = await fetch(server.httpUrl('/live/test123.flv'));
    await expect.poll(async () => (await listStreams(server))[0]!.players.http_flv).toBe(1);
    await viewer.body!.cancel();
    await expect.poll(async () => (await listStreams(server))[0]!.players.http_flv).toBe(0);
  });
});

describe('the HTTP API on bad input', () => {
  it.each([
    ['/api/v1/rtmp/streams/rtmp%2Flive%2Fnope', 404, 'stream_not_found'],
    ['/api/v1/rtmp/streams/rtmp%2Flive%2Fnope/snapshot', 404, 'stream_not_found'],
    ['/api/v1/rtmp/streams/not-an-id', 400, 'invalid_stream_id'],
    ['/api/v1/rtmp/streams/%E0%A4%A', 400, 'invalid_stream_id'],
    ['/live/no-such-stream.flv', 404, 'stream_not_found'],
    ['/live/%2e%2e.flv', 400, 'invalid_stream_name'],
    ['/api/anything.flv', 404, 'not_found'],
    ['/no/such/route', 404, 'not_found'],
  ])('GET %s → %i %s as JSON', async (path, status, code) => {
    const res = await fetch(server.httpUrl(path));
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).not.toMatch(/\n\s+at /);
  });

  it('answers a wrong method with 405 JSON with or without a token, a token route without one with 401, and /health with OK', async () => {
    // Which methods a path takes is public (the OpenAPI document); what a token route does is not.
    for (const headers of [{}, { authorization: `Bearer ${API_TOKEN}` }]) {
      const post = await fetch(server.httpUrl('/api/v1/rtmp/streams'), { method: 'POST', headers });
      expect(post.status).toBe(405);
      expect(await post.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
    }
    const kick = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fnobody'), { method: 'DELETE' });
    expect(kick.status).toBe(401);
    expect(await kick.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const health = await fetch(server.httpUrl('/health'));
    expect(health.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await health.text()).toBe('OK');
  });
});
