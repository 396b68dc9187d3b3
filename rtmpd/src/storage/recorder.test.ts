import { execFile } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import { lavfiClip, publishFlv } from '../../test/support/flv-fixture.ts';
import { Recorder } from './recorder.ts';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });
let clip: string;
let hub: StreamHub;

beforeAll(async () => {
  clip = await lavfiClip({ width: 320, height: 180, seconds: 2 });
});

afterEach(() => hub?.closeAll());

const newHub = () => (hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 }));

describe('Recorder', () => {
  it('records a stream to <storageDir>/<app>/<key>/<time>.flv that ffprobe plays back', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const recorder = new Recorder({ hub: newHub(), storageDir, logger });
    const { stream } = await publishFlv(hub, 'live', 'cam1', clip);
    // The publisher vanishes without any goodbye: the file must still be whole.
    hub.unpublish(stream);
    await recorder.close();
    expect(recorder.stats).toMatchObject({ filesOpened: 1, errors: 0 });
    const files = await readdir(join(storageDir, 'live', 'cam1'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z\.flv$/);
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_name,width,height:format=duration',
      '-of',
      'json',
      join(storageDir, 'live', 'cam1', files[0]!),
    ]);
    const probe = JSON.parse(stdout) as { streams: { codec_name: string; width?: number }[]; format: { duration: string } };
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(probe.streams.find((s) => s.codec_name === 'h264')?.width).toBe(320);
    expect(Number(probe.format.duration)).toBeGreaterThan(1.5);
  });

  it('logs and counts a disk error instead of crashing, and the stream goes on', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    // A file where the app directory should be: mkdir fails.
    await writeFile(join(storageDir, 'live'), 'not a directory');
    const recorder = new Recorder({ hub: newHub(), storageDir, logger });
    const { stream } = await publishFlv(hub, 'live', 'cam1', clip);
    expect(recorder.stats.errors).toBe(1);
    expect(stream.stats.videoFrames).toBeGreaterThan(0);
    await recorder.close();
  });
});
