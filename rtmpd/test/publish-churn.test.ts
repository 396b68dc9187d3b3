// A client looping publish → unpublish, each time sending the start of a GOP,
// made a playable recording file per cycle (about 500 files a second from one
// client, each a recording.completed webhook). --max-publishes-per-address-per-minute
// holds an address to that many publish starts a minute; a publish with no
// media leaves no file at all.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlvTagRecord } from '../src/flv/demux.ts';
import { lavfiClip, readFlvFile } from './support/flv-fixture.ts';
import { metric, publishTestPattern, startServer, stopAll, type RunningServer } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';

afterAll(() => stopAll());

// One start comes back every 20 s: longer than the two tests below take, even on a loaded machine.
const PER_MINUTE = 3;
const recordingFlags = ['--recording-segment-seconds', '2', '--recording-fragment-seconds', '0.5', '--snapshot-enabled', 'false'];

const recordings = (server: RunningServer, key: string): Promise<string[]> => readdir(join(server.storageDir, 'live', key)).catch(() => []);

/**
 * Publishes and unpublishes app live/key on fresh connections, sending `tags` each time, for `ms` or
 * until `starts` publishes began (counted, not timed, where a loaded machine would start too few); the
 * refusals' codes.
 */
async function churn(
  server: RunningServer,
  key: string,
  tags: FlvTagRecord[],
  until: { ms: number } | { starts: number },
): Promise<{ started: number; refused: string[] }> {
  const end = 'ms' in until ? Date.now() + until.ms : Infinity;
  const enough = 'starts' in until ? until.starts : Infinity;
  let started = 0;
  const refused: string[] = [];
  while (Date.now() < end && started < enough) {
    const client = await RtmpClient.connect(server.rtmpUrl('live', key));
    try {
      // A connection may create a few streams: publish on it until it is refused or out of streams.
      for (let i = 0; i < 4; i++) {
        await client.publish();
        started++;
        for (const tag of tags) {
          if (tag.kind === 'video') client.sendVideo(tag.timestamp, tag.body);
          else if (tag.kind === 'audio') client.sendAudio(tag.timestamp, tag.body);
        }
        await client.unpublish();
      }
    } catch (err) {
      refused.push((err as { code?: string }).code ?? String(err));
    } finally {
      client.close();
    }
  }
  return { started, refused };
}

describe('publish churn', () => {
  let server: RunningServer;
  let firstGop: FlvTagRecord[];
  beforeAll(async () => {
    const { tags } = await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 2 }));
    // The sequence headers, the first keyframe and a few frames after it: enough for a playable file.
    firstGop = tags.slice(0, 12);
    server = await startServer([...recordingFlags, '--max-publishes-per-address-per-minute', String(PER_MINUTE)]);
  });
  afterAll(async () => void (await server?.stop()));

  it('holds one address to --max-publishes-per-address-per-minute publish starts, and so recording files', async () => {
    const { started, refused } = await churn(server, 'loop', firstGop, { ms: 2000 });
    expect(started).toBe(PER_MINUTE);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused)).toEqual(new Set(['NetStream.Publish.Rejected']));
    await expect.poll(() => recordings(server, 'loop')).toHaveLength(PER_MINUTE);
    expect(await metric(server, 'rtmpd_connections_refused_total', 'protocol="rtmp",reason="publish_rate"')).toBe(refused.length);
  });

  it('refuses ffmpeg from that address too, which stops at once', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'late'), { seconds: 5 });
    expect(await publisher.exited).not.toBe(0);
    expect(publisher.stderr()).toContain('too many publishes');
    expect(await recordings(server, 'late')).toEqual([]);
  });
});

describe('a publish with no media', () => {
  afterAll(() => stopAll());

  it('leaves no recording file', async () => {
    const server = await startServer(recordingFlags);
    const { started, refused } = await churn(server, 'empty', [], { starts: 20 });
    expect(refused).toEqual([]);
    expect(started).toBe(20);
    await server.stop();
    expect(await recordings(server, 'empty')).toEqual([]);
  });
});
