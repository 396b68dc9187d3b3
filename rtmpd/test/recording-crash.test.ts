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

  it('a SIGKILL of rtmpd leaves every segment playable, the open one up to its last fragment', async () => {
    const victim = await startServer(flags);
    const publisher = publishTestPattern(victim.rtmpUrl('live', 'kill'), { seconds: 30 });
    try {
      await waitForStream(victim, 'rtmp/live/kill');
      await sleep(5200);
      victim.child.kill('SIGKILL');
      await new Promise((r) => victim.child.once('exit', r));
    } finally {
      publisher.child.kill('SIGKILL');
    }
    const seconds = await expectAllPlayable(join(victim.storageDir, 'live', 'kill'));
    // About 5 s were published; a kill costs at most the fragment being gathered (0.5 s) and the keyframe wait.
    expect(seconds).toBeGreaterThan(3);
  });
});
