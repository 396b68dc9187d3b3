// Crash safety of recordings with real processes: a publisher that drops and
// a SIGKILL of rtmpd itself each leave every recording file playable by
// ffprobe, the open one included up to its last complete fragment.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countFrames, publishTestPattern, startServer, stopAll, waitForStream, type RunningServer } from './support/processes.ts';

afterAll(() => stopAll());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectAllPlayable(dir: string): Promise<number> {
  const files = (await readdir(dir)).sort();
  expect(files.length).toBeGreaterThan(0);
  let seconds = 0;
  for (const name of files) {
    const probed = await countFrames(join(dir, name));
    expect(Object.keys(probed.frames).sort(), name).toEqual(['aac', 'h264']);
    expect(probed.frames['h264'], name).toBeGreaterThan(0);
    seconds += probed.seconds;
  }
  return seconds;
}

const flags = ['--recording-segment-seconds', '2', '--recording-fragment-seconds', '0.5', '--snapshot-enabled', 'false'];

describe('recordings survive crashes', () => {
  let server: RunningServer | undefined;
  afterAll(async () => void (await server?.stop()));

  it('a publisher killed mid-stream leaves every segment playable', async () => {
    server = await startServer(flags);
    const publisher = publishTestPattern(server.rtmpUrl('live', 'drop'), { seconds: 30 });
    await waitForStream(server, 'rtmp/live/drop');
    await sleep(4500);
    publisher.child.kill('SIGKILL');
    await sleep(1000);
    const seconds = await expectAllPlayable(join(server.storageDir, 'live', 'drop'));
    expect(seconds).toBeGreaterThan(3);
  });

  for (const format of ['fmp4', 'flv']) {
    it(`a SIGKILL of rtmpd leaves every ${format} segment playable, the open one up to its last fragment; restarted, rtmpd lists them as they are`, async () => {
      const formatFlags = [...flags, '--recording-format', format];
      const victim = await startServer(formatFlags);
      const publisher = publishTestPattern(victim.rtmpUrl('live', 'kill'), { seconds: 30 });
      try {
        await waitForStream(victim, 'rtmp/live/kill');
        await sleep(5200);
        victim.child.kill('SIGKILL');
        await new Promise((r) => victim.child.once('exit', r));
      } finally {
        publisher.child.kill('SIGKILL');
      }
      const dir = join(victim.storageDir, 'live', 'kill');
      const seconds = await expectAllPlayable(dir);
      // About 5 s were published; a kill costs at most the fragment being gathered (0.5 s) and the keyframe wait.
      expect(seconds).toBeGreaterThan(3);

      const restarted = await startServer([...formatFlags, '--storage-dir', victim.storageDir]);
      try {
        const res = await fetch(restarted.httpUrl('/api/v1/rtmp/recordings?stream_id=rtmp%2Flive%2Fkill'));
        const { recordings } = (await res.json()) as { recordings: { id: string; recording: boolean; duration_seconds: number }[] };
        expect(recordings.map((r) => r.id)).toEqual((await readdir(dir)).sort().map((name) => `live/kill/${name}`));
        for (const recording of recordings) {
          expect(recording.recording).toBe(false);
          // 25 fps: the API's duration is the video's, the cut file's included.
          const { frames } = await countFrames(join(victim.storageDir, recording.id));
          expect(Math.abs(recording.duration_seconds - frames['h264']! * 0.04), recording.id).toBeLessThan(0.1);
        }
      } finally {
        await restarted.stop();
      }
    });
  }
});
