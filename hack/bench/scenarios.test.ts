import { describe, expect, it } from 'vitest';
import { parseScenario, skipReason } from './scenarios.ts';

describe('bench scenarios', () => {
  it('reads the chunk size, the soak length and the features from the id', () => {
    expect(parseScenario('500x1@360p+c128')).toMatchObject({
      streams: 500,
      playersPerStream: 1,
      publisherChunkSize: 128,
      durationSeconds: undefined,
    });
    expect(parseScenario('100x3@720p+cserver')).toMatchObject({ fixture: '720p', publisherChunkSize: 'server' });
    expect(parseScenario('1x1000@360p')).toMatchObject({ streams: 1, playersPerStream: 1000, publisherChunkSize: undefined });
    expect(parseScenario('1000x0@360p+rec')).toMatchObject({ playersPerStream: 0, recording: true, snapshotIntervalSeconds: undefined });
    expect(parseScenario('500x1@360p+600s')).toMatchObject({ durationSeconds: 600, snapshotIntervalSeconds: undefined });
    expect(parseScenario('200x1+snap10+c4096')).toMatchObject({ fixture: '360p', snapshotIntervalSeconds: 10, publisherChunkSize: 4096 });
    expect(parseScenario('idle1000')).toEqual({ type: 'idle', id: 'idle1000', connections: 1000 });
  });

  it('refuses what it cannot run', () => {
    expect(() => parseScenario('500x1@1080p')).toThrow(/unknown fixture 1080p/);
    expect(() => parseScenario('500x1+c0')).toThrow(/chunk size 0/);
    expect(() => parseScenario('500x1+fast')).toThrow(/bad scenario/);
  });

  it('runs recording on every server, snapshots on rtmpd only, and holds HLS until it exists', () => {
    const rec = parseScenario('1000x0@360p+rec');
    expect(['rtmpd', 'nginx', 'nms'].map((s) => skipReason(rec, s as 'rtmpd'))).toEqual([undefined, undefined, undefined]);
    expect(skipReason(parseScenario('200x1+snap'), 'nginx')).toBe('rtmpd-only variant');
    expect(skipReason(parseScenario('10x100/flv'), 'nginx')).toBe('nginx-rtmp has no HTTP-FLV');
    // Players over RTMP and HTTP-FLV in turn.
    expect(parseScenario('20x10@360p/mix')).toMatchObject({ playProtocol: 'mixed', streams: 20, playersPerStream: 10 });
    expect(skipReason(parseScenario('20x10/mix'), 'nginx')).toBe('nginx-rtmp has no HTTP-FLV');
    expect(skipReason(parseScenario('20x10/mix'), 'nms')).toBeUndefined();
    expect(skipReason(parseScenario('200x1/hls'), 'rtmpd')).toBeUndefined();
    expect(skipReason(parseScenario('200x1/llhls+rec'), 'rtmpd')).toBeUndefined();
    expect(skipReason(parseScenario('200x1/hls'), 'nginx')).toBe('rtmpd-only variant');
    expect(parseScenario('100x1@360p/llhls+rec')).toMatchObject({ playProtocol: 'llhls', recording: true, streams: 100 });
    const fleet = parseScenario('10x10@360p/flv+fleet');
    expect(fleet).toMatchObject({ fleet: true, playProtocol: 'http-flv', streams: 10, playersPerStream: 10 });
    expect(parseScenario('10x10@360p')).toMatchObject({ fleet: false });
    expect(skipReason(fleet, 'rtmpd')).toBeUndefined();
    expect(skipReason(parseScenario('10x10+fleet'), 'nms')).toBe('rtmpd-only variant');
  });
});
