import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BitrateMeter } from '../http/bitrate.ts';
import { StreamHub } from '../hub/hub.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { podStreams, podStreamsSchema, sameToken, type PodStreams } from './routes.ts';

describe('the fleet token', () => {
  it('matches only the same token, whatever the lengths', () => {
    expect(sameToken('Bearer abc', 'Bearer abc')).toBe(true);
    expect(sameToken('Bearer abd', 'Bearer abc')).toBe(false);
    expect(sameToken('', 'Bearer abc')).toBe(false);
    expect(sameToken('Bearer abc'.repeat(100), 'Bearer abc')).toBe(false);
  });
});

describe("a pod's stream list, as another pod reads it", () => {
  const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
  const bitrate = new BitrateMeter(hub);
  let answer: PodStreams;

  beforeAll(async () => {
    await publishFlv(hub, 'live', 'cam', await lavfiClip({ width: 320, height: 180, seconds: 1 }));
    answer = JSON.parse(JSON.stringify(podStreams({ hub, bitrate, sources: {}, pod: 'edge-0' }))) as PodStreams;
  });
  afterAll(() => bitrate.close());

  it('is accepted as a pod sends it', () => {
    expect(podStreamsSchema.parse(answer)).toEqual(answer);
    expect(answer.streams[0]?.view).toMatchObject({ stream_id: 'rtmp/live/cam', video: { width: 320 } });
  });

  it('is refused when a field is missing, of the wrong type, out of range or too long', () => {
    const view = answer.streams[0]!.view;
    const withView = (changed: object) => ({ ...answer, streams: [{ relayed: false, view: { ...view, ...changed } }] });
    const { players: _, ...withoutPlayers } = view;
    for (const bad of [
      { ...answer, streams: [{ relayed: false, view: withoutPlayers }] },
      withView({ bytes_in: -1 }),
      withView({ keyframes: '3' }),
      withView({ start_time: 'yesterday' }),
      withView({ recording_state: 'maybe' }),
      withView({ app: 'a'.repeat(2000) }),
      { ...answer, streams: 'none' },
    ])
      expect(podStreamsSchema.safeParse(bad).success).toBe(false);
  });
});
