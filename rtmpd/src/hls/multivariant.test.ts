import { afterEach, describe, expect, it } from 'vitest';
import { publishFlv } from '../../test/support/flv-fixture.ts';
import { StreamHub } from '../hub/hub.ts';
import { renderMultivariant } from './multivariant.ts';

const fixture = (name: string) => new URL(`../flv/testdata/${name}`, import.meta.url).pathname;
const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
afterEach(() => hub.closeAll());

describe('renderMultivariant', () => {
  it('gives each variant its bit rates, RFC 6381 codecs, resolution and frame rate, and no CODECS where one has no string', async () => {
    // ffprobe: H.264 High level 1.3 (avc1.64000d), 320x240 at 25 fps, AAC LC; then HEVC (no codec string here) and Opus.
    const { stream: h264 } = await publishFlv(hub, 'live', 'h264', fixture('h264_aac.flv'));
    const { stream: hevc } = await publishFlv(hub, 'live', 'hevc', fixture('hevc_opus.flv'));
    const text = renderMultivariant([
      { stream: h264, uri: 'h264/index.m3u8', bandwidth: { peak: 1234.6, average: 0.2 } },
      { stream: hevc, uri: 'hevc/index.m3u8', bandwidth: { peak: 2000, average: 1500 } },
    ]);
    expect(text.split('\n')).toEqual([
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-STREAM-INF:BANDWIDTH=1235,AVERAGE-BANDWIDTH=1,CODECS="avc1.64000d,mp4a.40.2",RESOLUTION=320x240,FRAME-RATE=25.000',
      'h264/index.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=2000,AVERAGE-BANDWIDTH=1500,RESOLUTION=320x240,FRAME-RATE=25.000',
      'hevc/index.m3u8',
      '',
    ]);
  });
});
