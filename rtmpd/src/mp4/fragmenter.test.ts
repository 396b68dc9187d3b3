import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import { publishFlv } from '../../test/support/flv-fixture.ts';
import { Fragmenter, type Fragment } from './fragmenter.ts';

const run = promisify(execFile);
const fixture = (name: string) => join(import.meta.dirname, '../flv/testdata', name);
let hub: StreamHub;
afterEach(() => hub?.closeAll());

interface Muxed {
  inits: Buffer[];
  fragments: Fragment[];
  /** The last init segment and the fragments after it: a file a recorder would write. */
  lastFile: Buffer[];
}

/** Publishes an FLV fixture through a hub into a Fragmenter; returns what it produced. */
async function fragment(file: string, segmentSeconds: number, fragmentSeconds: number): Promise<Muxed> {
  hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 5000 });
  const muxed: Muxed = { inits: [], fragments: [], lastFile: [] };
  hub.on('publish', (stream) => {
    let fragmenter: Fragmenter;
    const subscriber: Subscriber = {
      kind: 'recorder',
      delivery: 'lossless',
      begin: (s: Stream) => {
        fragmenter = new Fragmenter(
          s,
          { segmentSeconds, fragmentSeconds },
          {
            init: (init) => {
              muxed.inits.push(init);
              muxed.lastFile = [init];
            },
            fragment: (f) => {
              muxed.fragments.push(f);
              muxed.lastFile.push(f.bytes);
            },
          },
        );
      },
      pendingBytes: () => 0,
      write: (packet: MediaPacket) => fragmenter.push(packet),
      close: () => fragmenter.finish(),
    };
    stream.subscribe(subscriber, performance.now());
  });
  const { stream } = await publishFlv(hub, 'live', 'mp4', file);
  hub.unpublish(stream);
  return muxed;
}

async function ffprobe(path: string): Promise<{ codecs: string[]; frames: number; duration: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-count_frames',
    '-show_entries',
    'stream=codec_name,codec_type,nb_read_frames:format=duration',
    '-of',
    'json',
    path,
  ]);
  const out = JSON.parse(stdout) as {
    streams: { codec_name: string; codec_type: string; nb_read_frames: string }[];
    format: { duration: string };
  };
  return {
    codecs: out.streams.map((s) => s.codec_name).sort(),
    frames: Number(out.streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0),
    duration: Number(out.format.duration),
  };
}

describe('Fragmenter', () => {
  it.each([
    ['h264_aac.flv', ['aac', 'h264'], 25],
    ['hevc_opus.flv', ['hevc', 'opus'], 25],
    ['av1_aac.flv', ['aac', 'av1'], 25],
    // MP3 has no sequence header: its track appears with its first frame, after the first keyframe, and
    // the fMP4 starts again (new init segment) at the next keyframe, 6 frames later.
    ['h264_mp3.flv', ['h264', 'mp3'], 9],
  ])('turns %s into fMP4 that ffprobe decodes whole', async (file, codecs, frames) => {
    const muxed = await fragment(fixture(file), 0.4, 0.1);
    expect(muxed.inits).toHaveLength(file.includes('mp3') ? 2 : 1);
    expect(muxed.fragments.length).toBeGreaterThan(3);
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-mp4-'));
    const path = join(dir, 'out.mp4');
    await writeFile(path, Buffer.concat(muxed.lastFile));
    const probed = await ffprobe(path);
    expect(probed.codecs).toEqual(codecs);
    expect(probed.frames).toBe(frames);
  });

  it('starts segments on keyframes and keeps fragments near their target', async () => {
    const { fragments } = await fragment(fixture('hevc_opus.flv'), 0.35, 0.1); // keyframe every 10 frames (0.4 s)
    const segmentStarts = [fragments[0]!, ...fragments.filter((_, i) => fragments[i - 1]?.endsSegment)];
    expect(segmentStarts.length).toBeGreaterThanOrEqual(2);
    for (const start of segmentStarts) expect(start.independent).toBe(true);
    // Every fragment but each segment's last holds 0.1 s, give or take half a 40 ms frame.
    for (const f of fragments.filter((f) => !f.endsSegment)) expect(Math.abs(f.duration - 0.1)).toBeLessThanOrEqual(0.021);
    // Fragments tile the timeline.
    for (let i = 1; i < fragments.length; i++)
      expect(fragments[i]!.start).toBeCloseTo(fragments[i - 1]!.start + fragments[i - 1]!.duration, 6);
  });
});
