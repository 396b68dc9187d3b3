// A player that stops reading, then reads again: what rtmpd queued for it
// meanwhile is at most --player-max-queue-seconds of media, whatever the byte
// bound allows, and it then resumes at live, on a keyframe.
import { execFileSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { avcFrame } from './support/codec-fixtures.ts';
import { metric, metricReaches, startServer, stopAll } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { eventually } from './support/wait.ts';

afterAll(() => stopAll());

const FRAME_BYTES = 64 * 1024;
const FRAME_MS = 40;
const GOP_FRAMES = 25;
const MAX_QUEUE_SECONDS = 2;

/** Bytes the kernel holds between rtmpd and the player on `port`: both ends' socket queues (`ss`: Recv-Q, Send-Q). */
function kernelHeldBytes(port: number): number {
  const lines = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  return lines
    .trim()
    .split('\n')
    .reduce((sum, line) => {
      const [recvQ, sendQ] = line.trim().split(/\s+/).map(Number);
      return sum + recvQ! + sendQ!;
    }, 0);
}

it('queues at most --player-max-queue-seconds of media for a player that stops reading, then resumes it at live', async () => {
  const server = await startServer([
    ...['--player-max-queue-seconds', String(MAX_QUEUE_SECONDS), '--player-max-buffer-bytes', String(256 * 1024 * 1024)],
    ...['--idle-timeout-seconds', '300', '--player-stall-timeout-seconds', '300'],
    ...['--recording-enabled', 'false', '--snapshot-enabled', 'false'],
  ]);
  const url = server.rtmpUrl('live', 'slow');
  const publisher = await RtmpClient.connect(url);
  await publisher.publish();
  const player = await RtmpClient.connect(url);
  const received: { timestamp: number; keyframe: boolean }[] = [];
  player.on('media', (kind, timestamp, body) => {
    if (kind === 'video') received.push({ timestamp, keyframe: body[0] === 0x17 });
  });
  await player.play();
  player.socket.pause();

  let sent = 0;
  /** Publishes GOPs of 1 s (25 frames of 64 KiB, 1.6 MiB a second) and waits until rtmpd has read and fanned them out. */
  const publishGops = async (count: number) => {
    for (let gop = 0; gop < count; gop++) {
      for (let i = 0; i < GOP_FRAMES; i++, sent++) publisher.sendVideo(sent * FRAME_MS, avcFrame(FRAME_BYTES, i === 0));
      publisher.flush();
      await metricReaches(server, 'rtmpd_stream_video_frames_total', '', sent, 30_000);
    }
  };
  // 20 s of media while the player reads nothing: the old byte bound alone (256 MiB) would queue all of it.
  await publishGops(20);
  const live = sent * FRAME_MS;
  const heldFrames = Math.ceil(kernelHeldBytes(player.socket.localPort!) / FRAME_BYTES);
  expect(received).toEqual([]);

  player.socket.resume();
  // Live media goes on until the player has caught up with it.
  await eventually('the player caught up with live', async () => {
    if (received.some((frame) => frame.timestamp >= live)) return true;
    await publishGops(1);
    return false;
  });
  const caughtUp = received.findIndex((frame) => frame.timestamp >= live);
  const stale = received.slice(0, caughtUp);
  // What the player got of the 20 s it fell behind: what the kernel's buffers held, then rtmpd's
  // queue of at most MAX_QUEUE_SECONDS of media (its oldest frame that far behind the newest,
  // inclusive), and two frames of slack: one the two may split, one the player's socket may have read
  // ahead before it paused. The byte bound alone: all 500.
  const queuedFrames = (MAX_QUEUE_SECONDS * 1000) / FRAME_MS + 1;
  expect(stale.length).toBeLessThanOrEqual(heldFrames + queuedFrames + 2);
  expect(stale.map((frame) => frame.timestamp)).toEqual(stale.map((_, i) => i * FRAME_MS));
  expect(received[caughtUp]!.keyframe).toBe(true);
  expect(await metric(server, 'rtmpd_stream_dropped_frames_total')).toBeGreaterThan(0);

  player.destroy();
  publisher.close();
  expect(await server.stop()).toBe(0);
});
