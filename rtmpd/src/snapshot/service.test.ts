import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import { enhancedHevcTags, hevcAnnexB, type VideoTag } from '../../test/support/enhanced-hevc.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { SnapshotService, type SnapshotConfig } from './service.ts';

const run = promisify(execFile);
let h264Clip: string;
let hevcTags: VideoTag[];
let hub: StreamHub;
let service: SnapshotService | undefined;

beforeAll(async () => {
  [h264Clip, hevcTags] = await Promise.all([
    lavfiClip({ width: 320, height: 180, seconds: 2 }),
    hevcAnnexB(320, 180, 1).then(enhancedHevcTags),
  ]);
});

afterEach(() => {
  service?.close();
  hub?.closeAll();
});

/** Warnings the service logged, by message. */
let warnings: string[] = [];

async function setup(overrides: Partial<SnapshotConfig> = {}) {
  warnings = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
  const keyframeDir = await mkdtemp(join(tmpdir(), 'rtmpd-snap-'));
  hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const config: SnapshotConfig = {
    keyframeDir,
    snapshotEnabled: true,
    snapshotIntervalSeconds: 0,
    snapshotKeep: 10,
    snapshotWidth: 0,
    snapshotQuality: 3,
    snapshotConcurrency: 2,
    snapshotTimeoutSeconds: 10,
    ffmpegPath: 'ffmpeg',
    maxDecodePixels: 320 * 180,
    ...overrides,
  };
  service = new SnapshotService({ hub, config, logger });
  return { keyframeDir, service };
}

async function probeSize(jpeg: Buffer): Promise<{ codec_name: string; width: number; height: number }> {
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-jpeg-')), 'snapshot.jpg');
  await writeFile(path, jpeg);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', path]);
  return (JSON.parse(stdout) as { streams: [{ codec_name: string; width: number; height: number }] }).streams[0];
}

describe('SnapshotService', () => {
  it('decodes the last H.264 keyframe to a JPEG once, shares it, and keeps latest files on disk', async () => {
    const { keyframeDir, service } = await setup();
    const { stream } = await publishFlv(hub, 'live', 'cam', h264Clip);
    const [a, b] = await Promise.all([service.get(stream), service.get(stream)]);
    expect(a.jpeg.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(b.jpeg).toBe(a.jpeg);
    expect(await probeSize(a.jpeg)).toMatchObject({ codec_name: 'mjpeg', width: 320, height: 180 });
    expect((await service.get(stream)).jpeg).toBe(a.jpeg);
    expect(service.stats).toMatchObject({ decodes: 1, cacheHits: 2 });
    await expect
      .poll(() => readdir(join(keyframeDir, 'live', 'cam')).then((f) => f.sort()), { timeout: 3000 })
      .toEqual(['latest.h264', 'latest.jpg']);
    // The raw keyframe on disk is a standalone Annex-B stream ffmpeg decodes by itself.
    const raw = await readFile(join(keyframeDir, 'live', 'cam', 'latest.h264'));
    expect(raw.subarray(0, 4)).toEqual(Buffer.from([0, 0, 0, 1]));
  });

  it('decodes HEVC and scales to --snapshot-width keeping the aspect ratio', async () => {
    const { service } = await setup({ snapshotWidth: 160 });
    const stream = hub.publish('live', 'hevc', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    for (const tag of hevcTags) stream.pushVideo(tag.timestamp, tag.body, performance.now());
    expect(stream.videoTrack?.codec).toBe('hevc');
    expect(await probeSize((await service.get(stream)).jpeg)).toMatchObject({ width: 160, height: 90 });
  });

  it('says what is missing before a keyframe, and when snapshots are disabled', async () => {
    const { service } = await setup();
    const stream = hub.publish('live', 'empty', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'no_video', message: expect.stringMatching(/no video/) });
    stream.pushVideo(0, hevcTags[0]!.body, performance.now()); // the decoder config alone
    expect(stream.videoTrack?.codec).toBe('hevc');
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'no_keyframe', message: expect.stringMatching(/no keyframe/) });
    service.close();
    const disabled = await setup({ snapshotEnabled: false });
    await expect(disabled.service.get(stream)).rejects.toMatchObject({ code: 'snapshots_disabled' });
  });

  it('reports a failing decoder as decode_failed and does not cache the failure', async () => {
    const { service } = await setup({ ffmpegPath: '/nonexistent/ffmpeg' });
    const { stream } = await publishFlv(hub, 'live', 'cam', h264Clip);
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed' });
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed' });
    expect(service.stats.decodes).toBe(2);
  });

  it('gives a decode --snapshot-timeout-seconds, then answers decode_failed', async () => {
    // An ffmpeg that never finishes: the decode is cut at the option's deadline, not the default's.
    const wedged = join(await mkdtemp(join(tmpdir(), 'rtmpd-wedged-')), 'ffmpeg');
    await writeFile(wedged, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const { service } = await setup({ ffmpegPath: wedged, snapshotTimeoutSeconds: 1 });
    const { stream } = await publishFlv(hub, 'live', 'cam', h264Clip);
    const started = performance.now();
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed', message: expect.stringMatching(/within 1000 ms/) });
    expect(performance.now() - started).toBeLessThan(9000);
  });

  it('answers every request that joins a failing decode with decode_failed, and logs it once per keyframe', async () => {
    const { service } = await setup({ ffmpegPath: '/nonexistent/ffmpeg' });
    const { stream } = await publishFlv(hub, 'live', 'cam', h264Clip);
    const joined = await Promise.allSettled([service.get(stream), service.get(stream), service.get(stream)]);
    for (const result of joined) expect(result).toMatchObject({ status: 'rejected', reason: { code: 'decode_failed' } });
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed' });
    expect(warnings).toEqual(['snapshot decode failed']);
    // A new keyframe: its failure is news.
    stream.pushVideo(1_000_000, stream.lastKeyframe!.body, 0);
    await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed' });
    expect(warnings).toEqual(['snapshot decode failed', 'snapshot decode failed']);
  });

  it('answers a malformed keyframe the relay tolerated with decode_failed, logged once', async () => {
    const { service } = await setup();
    const stream = hub.publish('live', 'broken', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    // An AVC sequence header whose avcC announces a 0x50-byte SPS and ends, then an IDR frame.
    stream.pushVideo(0, Buffer.from([0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x50, 0x67]), 0);
    stream.pushVideo(40, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x10]), 0);
    for (let i = 0; i < 5; i++) await expect(service.get(stream)).rejects.toMatchObject({ code: 'decode_failed' });
    expect(warnings).toEqual(['snapshot decode failed']);
  });

  it('answers busy to every request that joins a decode the full pool refused', async () => {
    const { service } = await setup({ snapshotConcurrency: 1 });
    // One decode runs and eight wait (the pool holds eight per slot); the tenth stream's decode is refused.
    const streams = await Promise.all(Array.from({ length: 10 }, (_, i) => publishFlv(hub, 'live', `cam${i}`, h264Clip)));
    const first = streams.slice(0, 9).map(({ stream }) => service.get(stream));
    const last = streams[9]!.stream;
    const refused = await Promise.allSettled([service.get(last), service.get(last)]);
    for (const result of refused) expect(result).toMatchObject({ status: 'rejected', reason: { code: 'busy' } });
    // Those queued decode, or (on a machine slow enough to pass the queue's wait) are busy too; none fails.
    for (const result of await Promise.allSettled(first)) {
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: 'busy' });
    }
    expect(warnings).toEqual([]);
  });

  it('writes timestamped JPEGs every interval and keeps --snapshot-keep of them', async () => {
    const { keyframeDir } = await setup({ snapshotIntervalSeconds: 1, snapshotKeep: 1 });
    await publishFlv(hub, 'live', 'cam', h264Clip);
    const timestamped = () =>
      readdir(join(keyframeDir, 'live', 'cam')).then(
        (f) => f.filter((n) => /^\d{4}-.*\.jpg$/.test(n)),
        () => [],
      );
    await expect.poll(timestamped, { timeout: 4000 }).toHaveLength(1);
  });

  it('refuses a picture over --max-decode-pixels with picture_too_large before any decode, and logs it once per stream', async () => {
    // A 320x180 stream against a limit a pixel lower; the interval tries it every second.
    const { service } = await setup({ maxDecodePixels: 320 * 180 - 1, snapshotIntervalSeconds: 1 });
    const { stream } = await publishFlv(hub, 'live', 'cam', h264Clip);
    for (let i = 0; i < 3; i++)
      await expect(service.get(stream)).rejects.toMatchObject({ code: 'picture_too_large', message: expect.stringMatching(/320x180/) });
    await expect.poll(() => service.stats.pictureRefusals, { timeout: 4000 }).toBeGreaterThanOrEqual(5);
    expect(service.stats.decodes).toBe(0);
    expect(warnings).toEqual(['snapshot: not decoded, the picture is over --max-decode-pixels']);
  });
});
