import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { parseConfig } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import { HlsServer } from './server.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((close) => close()));

/**
 * Publishes live/ended with its HLS started before the first tag, pushes a
 * real H.264/AAC file through it and unpublishes it; returns only a WeakRef
 * to the stream, so nothing of this test holds it.
 */
async function publishSegmentedAndEnd(hub: StreamHub, hls: HlsServer): Promise<WeakRef<object>> {
  const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
  const stream = hub.publish('live', 'ended', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
  expect(typeof hls.muxer('live', 'ended')).toBe('object');
  for (const tag of tags) {
    if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, performance.now());
    else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, performance.now());
  }
  expect(stream.lastKeyframe).toBeDefined();
  hub.unpublish(stream);
  return new WeakRef(stream);
}

describe('an HLS muxer kept after its stream ended', () => {
  it('serves the last playlist and segments without keeping the stream', async () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const hls = new HlsServer({ hub, config: parseConfig({ hlsSegmentSeconds: 1 }), logger: pino({ level: 'silent' }) });
    closers.push(
      () => hls.close(),
      () => hub.closeAll(),
    );
    const ended = await publishSegmentedAndEnd(hub, hls);
    await new Promise((resolve) => setImmediate(resolve)); // a WeakRef holds its target until the job that made it is done
    gc();
    expect(ended.deref()).toBeUndefined();

    const muxer = hls.muxer('live', 'ended');
    if (typeof muxer === 'string') throw new Error(`no HLS after the end: ${muxer}`);
    expect(muxer.ended).toBe(true);
    expect(muxer.playlistText()).toContain('#EXT-X-ENDLIST');
    expect(muxer.segment(0)?.length).toBeGreaterThan(0);
  });
});

describe('a request waiting for an HLS segment', () => {
  it('is let go when its client leaves, and not kept at all when the client left before it asked (while it was authorized)', async () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const hls = new HlsServer({ hub, config: parseConfig({}), logger: pino({ level: 'silent' }) });
    closers.push(
      () => hls.close(),
      () => hub.closeAll(),
    );
    hub.publish('live', 'quiet', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
    const muxer = hls.muxer('live', 'quiet');
    if (typeof muxer === 'string') throw new Error(`no HLS: ${muxer}`);
    const stillWaiting = () => new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1000));
    const leaves = new AbortController();
    const waiting = muxer.waitUntil(() => muxer.ready, 60_000, leaves.signal);
    leaves.abort();
    expect(await Promise.race([waiting, stillWaiting()])).toBe(false);
    expect(await Promise.race([muxer.waitUntil(() => muxer.ready, 60_000, AbortSignal.abort()), stillWaiting()])).toBe(false);
  });
});

describe('the HLS variant of a stream', () => {
  const serverWith = (config: Record<string, unknown>) => {
    const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
    const hls = new HlsServer({ hub, config: parseConfig(config), logger: pino({ level: 'silent' }) });
    closers.push(
      () => hls.close(),
      () => hub.closeAll(),
    );
    return { hub, hls };
  };

  it('is what --hls-variant says, a rule that sets its own wins, and Low-Latency HLS stays fMP4', () => {
    const { hls } = serverWith({
      hlsVariant: 'mpegts',
      hlsRules: [
        { app: 'll', lowLatency: true },
        { app: 'mp4', variant: 'fmp4' },
      ],
    });
    expect(hls.settings('live', 'a')).toMatchObject({ lowLatency: false, variant: 'mpegts' });
    expect(hls.settings('ll', 'a')).toMatchObject({ lowLatency: true, variant: 'fmp4' });
    expect(hls.settings('mp4', 'a')).toMatchObject({ lowLatency: false, variant: 'fmp4' });
    const lowLatency = serverWith({ hlsLowLatency: true, hlsRules: [{ app: 'tv', variant: 'mpegts' }] }).hls;
    expect(lowLatency.settings('live', 'a')).toMatchObject({ lowLatency: true, variant: 'fmp4' });
    expect(lowLatency.settings('tv', 'a')).toMatchObject({ lowLatency: false, variant: 'mpegts' });
  });

  it('falls back to fMP4 for a stream whose codecs TS does not carry here: Opus, AAC with a program config element', async () => {
    const { hub, hls } = serverWith({ hlsVariant: 'mpegts' });
    const publish = async (key: string, file: string, audioHeader?: Buffer) => {
      const stream = hub.publish('live', key, { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
      const { tags } = await readFlvFile(new URL(`../flv/testdata/${file}`, import.meta.url).pathname);
      for (const tag of tags.slice(0, 4)) {
        if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, performance.now());
        else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, audioHeader ?? tag.body, performance.now());
      }
      const muxer = hls.muxer('live', key);
      if (typeof muxer === 'string') throw new Error(`no HLS: ${muxer}`);
      return muxer.options.variant;
    };
    expect(await publish('aac', 'h264_aac.flv')).toBe('mpegts');
    expect(await publish('opus', 'hevc_opus.flv')).toBe('fmp4');
    // An AAC sequence header (0xaf 0x00) whose AudioSpecificConfig puts LC's channels in a program config element.
    const pce = Buffer.from([0xaf, 0x00, 0x12, 0x00, 0x05, 0x08, 0x48, 0x00, 0x20, 0x00, 0xc6, 0x40, 0x04, 0x4c, 0x61, 0x76, 0x63]);
    expect(await publish('pce', 'h264_aac.flv', pce)).toBe('fmp4');
  });
});
