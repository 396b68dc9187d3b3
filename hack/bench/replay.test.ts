// The replay of rtmpd alone, run as it is run by hand: every message it feeds
// reaches the players, or its CPU seconds would be those of less work.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('feeds every publisher the recorded messages through the server to its players, and reports the CPU they took', async () => {
  const script = new URL('./replay.ts', import.meta.url).pathname;
  const args = ['--conditions=source', script, '--streams', '3', '--players', '2', '--seconds', '1', '--chunk-size', '128'];
  const { stdout } = await run(process.execPath, args, { timeout: 90_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  // 360p: 25 video and about 47 audio frames a second per stream.
  expect(result.messagesIn).toBeGreaterThan(3 * 60);
  expect(result.messagesOut).toBe(2 * result.messagesIn!);
  expect(result.lost).toBe(0);
  expect(result.userMs).toBeGreaterThan(0);
});
