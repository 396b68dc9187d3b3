// --max-decode-pixels with real parts: ffmpeg publishes a 320x180 test pattern to an rtmpd that decodes
// pictures of at most 160x90 pixels (small, to keep the encoders cheap). Its snapshot is refused (422 picture_too_large) and its transcode never
// starts, both counted, and no ffmpeg runs for it: both ffmpeg paths are a wrapper that logs each run.
// A 160x90 stream, at the limit, on the same server still snapshots, through the same wrapper, with the
// limit passed to ffmpeg's decoder (which counts it as 192x90: ffmpegMaxPixels leaves room for that).
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffmpegMaxPixels } from '../src/ffmpeg/picture-limit.ts';
import { listStreams, publishTestPattern, startServer, stopAll, tempDir, waitForStream } from './support/processes.ts';

afterAll(stopAll);

describe('--max-decode-pixels', () => {
  it('refuses the snapshot and the transcode of a larger picture without running ffmpeg, and snapshots one at the limit', async () => {
    const dir = await tempDir('rtmpd-decode-limits-');
    const runs = join(dir, 'runs.log');
    const wrapper = join(dir, 'ffmpeg');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${runs}'\nexec ffmpeg "$@"\n`);
    await chmod(wrapper, 0o755);
    await writeFile(runs, '');
    const ladder = [{ name: '90p', height: 90, videoBitrate: 150 }];
    const server = await startServer([
      ...['--recording-enabled', 'false', '--max-decode-pixels', String(160 * 90)],
      ...['--ffmpeg-path', wrapper, '--transcode-ffmpeg-path', wrapper],
      ...['--transcode-rules', JSON.stringify([{ app: 'live', key: 'large', renditions: ladder }])],
    ]);
    const large = publishTestPattern(server.rtmpUrl('live', 'large'), { seconds: 60, size: '320x180' });
    const small = publishTestPattern(server.rtmpUrl('live', 'small'), { seconds: 60, size: '160x90' });
    await waitForStream(server, 'rtmp/live/large', 30_000);
    await waitForStream(server, 'rtmp/live/small', 30_000);

    const snapshot = (key: string) => fetch(server.httpUrl(`/api/v1/rtmp/streams/rtmp%2Flive%2F${key}/snapshot`));
    for (let i = 0; i < 2; i++) {
      const refused = await snapshot('large');
      expect(refused.status).toBe(422);
      expect(await refused.json()).toMatchObject({
        error: { code: 'picture_too_large', message: expect.stringMatching(/320x180.*14400/) },
      });
    }
    expect((await listStreams(server)).find((s) => s.stream_id === 'rtmp/live/large')?.transcode).toBeNull();
    const metrics = await (await fetch(server.httpUrl('/metrics'))).text();
    expect(metrics).toContain('rtmpd_transcode_refused_total{reason="picture_too_large"} 1\n');
    expect(metrics).toContain('rtmpd_snapshots_total{outcome="picture_too_large"} 2\n');
    expect(server.logs.filter((l) => l.msg === 'transcode: not transcoded, the picture is over --max-decode-pixels')).toHaveLength(1);
    expect(server.logs.filter((l) => l.msg === 'snapshot: not decoded, the picture is over --max-decode-pixels')).toHaveLength(1);

    const decoded = await snapshot('small');
    expect(decoded.status).toBe(200);
    expect(Buffer.from(await decoded.arrayBuffer()).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    // The one ffmpeg that ran is the small stream's decode: nothing else, not even a capability probe.
    const ran = (await readFile(runs, 'utf8')).trim().split('\n');
    expect(ran).toEqual([expect.stringContaining(`-f h264 -threads 1 -max_pixels ${ffmpegMaxPixels(160 * 90)} -i pipe:0`)]);
    for (const publisher of [large, small]) publisher.child.kill('SIGINT');
    expect(await server.stop()).toBe(0);
  }, 90_000);
});
