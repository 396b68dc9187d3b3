// Streams coming and going: a viewer that arrives before its publisher, a
// publisher killed mid-stream, snapshots at --snapshot-width, and the whole
// server stopped with SIGTERM while players are connected.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtmpClient, type StatusInfo } from './support/rtmp-client.ts';
import {
  listStreams,
  probe,
  publishTestPattern,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer(['--play-wait-seconds', '10', '--snapshot-width', '320']);
});

afterAll(async () => {
  await server?.stop();
  stopAll();
});

describe('stream lifecycle', () => {
  it('serves a viewer that started before the publisher (--play-wait-seconds)', async () => {
    const probed = probe(server.httpUrl('/live/early.flv'));
    const rtmpProbed = probe(server.rtmpUrl('live', 'early'));
    await new Promise((r) => setTimeout(r, 1000));
    const publisher = publishTestPattern(server.rtmpUrl('live', 'early'), { seconds: 20 });
    try {
      for (const streams of await Promise.all([probed, rtmpProbed])) {
        expect(streams).toEqual(expect.arrayContaining([expect.objectContaining({ codec_name: 'h264', width: 640, height: 360 })]));
      }
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it('scales snapshots to --snapshot-width, keeping the aspect ratio', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'small'), { seconds: 20 });
    try {
      await waitForStream(server, 'rtmp/live/small');
      const res = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fsmall/snapshot'));
      expect(res.status).toBe(200);
      const path = join(await tempDir('rtmpd-snap-'), 'small.jpg');
      await import('node:fs/promises').then(async (fs) => fs.writeFile(path, Buffer.from(await res.arrayBuffer())));
      expect(await probe(path)).toEqual([expect.objectContaining({ codec_name: 'mjpeg', width: 320, height: 180 })]);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it('survives a publisher killed mid-stream: healthy, stream gone from the list, recording playable', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'dropped'), { seconds: 30 });
    await waitForStream(server, 'rtmp/live/dropped');
    await new Promise((r) => setTimeout(r, 2000));
    publisher.child.kill('SIGKILL');
    await publisher.exited;
    await expect
      .poll(async () => (await listStreams(server)).some((s) => s.stream_id === 'rtmp/live/dropped'), { timeout: 10_000 })
      .toBe(false);
    expect(await (await fetch(server.httpUrl('/health'))).text()).toBe('OK');
    const snapshot = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fdropped/snapshot'));
    expect(snapshot.status).toBe(404);
    const dir = join(server.storageDir, 'live', 'dropped');
    const [recording] = await readdir(dir);
    const streams = await probe(join(dir, recording!));
    expect(streams).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codec_name: 'h264', width: 640, height: 360 }),
        expect.objectContaining({ codec_name: 'aac' }),
      ]),
    );
  });
});

describe('SIGTERM', () => {
  it('tells RTMP players, ends HTTP-FLV viewers and exits 0', async () => {
    const own = await startServer();
    const publisher = publishTestPattern(own.rtmpUrl('live', 'bye'), { seconds: 30 });
    try {
      await waitForStream(own, 'rtmp/live/bye');
      const player = await RtmpClient.connect(own.rtmpUrl('live', 'bye'));
      const statuses: StatusInfo[] = [];
      player.on('status', (info) => statuses.push(info));
      const closed = new Promise((r) => player.once('close', r));
      await player.play();
      const viewer = await fetch(own.httpUrl('/live/bye.flv'));
      const drained = viewer.arrayBuffer();
      expect(await own.stop()).toBe(0);
      await closed;
      expect(statuses.map((s) => s.code)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^NetStream\.Play\.(Stop|UnpublishNotify)$/)]),
      );
      // The HTTP-FLV response ended cleanly (no reset) and carried media.
      expect((await drained).byteLength).toBeGreaterThan(1000);
      expect(own.logs.map((l) => l.msg)).toContain('stopped');
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  // A log collector that died (or `rtmpd | head`) leaves stdout a broken pipe;
  // the lines written then are lost, the process still stops.
  it('exits 0 when what read its log has gone away', async () => {
    const own = await startServer();
    own.child.stdout!.destroy();
    const stopped = own.stop();
    const timeout = new Promise<string>((r) => setTimeout(() => r('still running 20 s after SIGTERM'), 20_000).unref());
    expect(await Promise.race([stopped, timeout])).toBe(0);
  }, 30_000);
});
