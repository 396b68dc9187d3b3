import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';
import { parseConfig } from '../config.ts';
import { HlsServer } from '../hls/server.ts';
import { StreamHub } from '../hub/hub.ts';
import { podLoad } from './load.ts';

const avcc = readFileSync(new URL('../codec/testdata/h264_high_320x240.avcc', import.meta.url));
const videoHeader = Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), avcc]);

const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((close) => close()));

function setup(): { hub: StreamHub; hls: HlsServer } {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 60_000 });
  const hls = new HlsServer({ hub, config: parseConfig({}), logger: pino({ level: 'silent' }) });
  closers.push(
    () => hls.close(),
    () => hub.closeAll(),
  );
  return { hub, hls };
}

const publisher = (protocol: 'rtmp' | 'relay') => ({ protocol, remoteAddress: '127.0.0.1', close: () => undefined });

describe("a pod's load in its Lease", () => {
  it('counts RTMP, HTTP-FLV and HLS players, and publishers but not the relays from other pods', () => {
    const { hub, hls } = setup();
    const own = hub.publish('live', 'a', publisher('rtmp'));
    const relayed = hub.publish('live', 'b', publisher('relay'));
    for (const stream of [own, relayed]) stream.pushVideo(0, videoHeader, performance.now());
    own.subscribe(new FakeSubscriber('rtmp'), performance.now());
    own.subscribe(new FakeSubscriber('http-flv'), performance.now());
    own.subscribe(new FakeSubscriber('recorder'), performance.now());
    expect(podLoad(hub, hls)).toEqual({ publishers: 1, players: 2 });

    // Two HLS clients poll a's playlist, one b's (a stream relayed here is watched here).
    const muxerOf = (key: string) => {
      const muxer = hls.muxer('live', key);
      if (typeof muxer === 'string') throw new Error(`no HLS for ${key}: ${muxer}`);
      return muxer;
    };
    muxerOf('a').touch('10.0.0.1 player');
    muxerOf('a').touch('10.0.0.2 player');
    muxerOf('a').touch('10.0.0.2 player');
    muxerOf('b').touch('10.0.0.3 player');
    expect(podLoad(hub, hls)).toEqual({ publishers: 1, players: 5 });
    expect(podLoad(hub, undefined)).toEqual({ publishers: 1, players: 2 });
  });
});
