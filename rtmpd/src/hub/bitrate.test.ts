import { describe, expect, it } from 'vitest';
import { BitrateMeter } from './bitrate.ts';
import { StreamHub } from './hub.ts';

describe('BitrateMeter', () => {
  it('measures over the recent window, not since the start', () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 0, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
    const meter = new BitrateMeter(hub, { windowMs: 2000, sampleEveryMs: 1000 });
    const stream = hub.publish('live', 'x', { protocol: 'rtmp', remoteAddress: '127.0.0.1:1', close: () => {} });
    stream.stats.bytesIn = 1_000_000; // a burst long ago
    meter.sample(0);
    meter.sample(1000);
    meter.sample(2000);
    stream.stats.bytesIn += 250_000; // then 1000 kbit/s for 2 s
    meter.sample(3000);
    meter.sample(4000);
    expect(meter.kbps(stream, 4000)).toBe(1000);
    meter.close();
    hub.closeAll();
  });
});
