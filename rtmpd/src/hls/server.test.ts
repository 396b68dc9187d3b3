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
