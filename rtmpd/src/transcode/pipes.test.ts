import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { AdmissionDecision } from '../rtmp/server/admission.ts';
import { RenditionPublish } from './pipes.ts';

let hub: StreamHub;
afterEach(() => hub?.closeAll());

describe('RenditionPublish', () => {
  it("reads ffmpeg's output on while the rendition's claim is taken: ffmpeg never waits on a full pipe", async () => {
    hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
    // About 1 MB of FLV, far more than a pipe takes (64 KiB), written as fast as libx264 encodes it.
    const ffmpeg = spawn(
      'ffmpeg',
      [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x180:rate=25',
        '-t',
        '20',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-f',
        'flv',
        'pipe:1',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const exited = new Promise<number | null>((resolve) => ffmpeg.once('exit', resolve));
    let grant: ((decision: AdmissionDecision) => void) | undefined;
    const released: string[] = [];
    const claim = () => new Promise<AdmissionDecision>((resolve) => (grant = resolve));
    new RenditionPublish({ hub, app: 'live', key: 'cam_low', output: ffmpeg.stdout, claim, from: 'test', log: pino({ level: 'silent' }) });
    // A pipe left paused until the claim is held would block ffmpeg on a write.
    const stalled = new Promise<'stalled'>((resolve) => setTimeout(() => resolve('stalled'), 30_000).unref());
    expect(await Promise.race([exited, stalled])).toBe(0);
    expect(grant).toBeDefined();
    // The claim held after ffmpeg ended is given back: nothing is published.
    grant!({ allow: true, lease: { attach: () => undefined, release: () => released.push('cam_low') } });
    await new Promise((resolve) => setImmediate(resolve));
    expect(released).toEqual(['cam_low']);
    expect(hub.get('live', 'cam_low')).toBeUndefined();
  }, 40_000);
});
