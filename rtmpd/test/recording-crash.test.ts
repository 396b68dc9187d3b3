// Crash safety of recordings with real processes: a publisher that drops and
// a SIGKILL of rtmpd itself each leave every recording file playable by
// ffprobe, the open one included up to its last complete fragment.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishTestPattern, runCommand, startServer, stopAll, waitForStream, type RunningServer } from './support/processes.ts';

afterAll(() => stopAll());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectAllPlayable(dir: string): Promise<number> {
  const files = (await readdir(dir)).sort();
  expect(files.length).toBeGreaterThan(0);
  let seconds = 0;
  for (const name of files) {
    const { code, stdout, stderr } = await runCommand('ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-show_entries',
      'stream=codec_name,nb_read_frames:format=duration',
      '-of',
      'json',
      join(dir, name),
    ]);
    expect(code, `${name}: ${stderr}`).toBe(0);
    const probed = JSON.parse(stdout) as { streams: { codec_name: string; nb_read_frames: string }[]; format: { duration: string } };
    expect(probed.streams.map((s) => s.codec_name).sort(), name).toEqual(['aac', 'h264']);
    expect(Number(probed.streams.find((s) => s.codec_name === 'h264')!.nb_read_frames), name).toBeGreaterThan(0);
    seconds += Number(probed.format.duration);
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
