// Test media made by ffmpeg at bench time (lavfi testsrc2 + sine), cached
// under .bench/fixtures, then loaded once into memory as FLV tags that every
// publisher replays (the buffers are shared, never copied per publisher).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readFlvFile } from '../../rtmpd/test/support/flv-fixture.ts';

const run = promisify(execFile);

/** Every fixture has a keyframe every 2 s, the interval OBS and streaming services recommend. */
export const KEYFRAME_INTERVAL_SECONDS = 2;

export interface FixtureSpec {
  name: string;
  width: number;
  height: number;
  fps: number;
  profile: 'baseline' | 'main';
  videoKbps: number;
  audioKbps: number;
  seconds: number;
}

export const FIXTURES: Record<string, FixtureSpec> = {
  '360p': { name: '360p', width: 640, height: 360, fps: 25, profile: 'baseline', videoKbps: 500, audioKbps: 64, seconds: 20 },
  '720p': { name: '720p', width: 1280, height: 720, fps: 25, profile: 'main', videoKbps: 2000, audioKbps: 64, seconds: 20 },
};

interface FixtureTag {
  kind: 'audio' | 'video' | 'data';
  /** Milliseconds from the start of the file. */
  timestamp: number;
  body: Buffer;
  /** A coded H.264 frame (AVC NALU packet): gets the SEI probe. */
  probe: boolean;
}

export interface Fixture {
  spec: FixtureSpec;
  path: string;
  /** Decoder configuration, sent once per publish before any frame. */
  headers: FixtureTag[];
  /** Coded audio and video in timestamp order, replayed in a loop. */
  frames: FixtureTag[];
  /** Loop length in ms: the timestamp of the frame after the last one. */
  loopMs: number;
  videoFramesPerLoop: number;
  /** Measured from the file: audio + video payload bits per second. */
  bitrateBps: number;
}

function fileName(s: FixtureSpec): string {
  return `${s.name}-${s.width}x${s.height}-${s.fps}-${s.profile}-${s.videoKbps}k-${s.audioKbps}k-${s.seconds}s.flv`;
}

/** Encodes the fixture unless the cache holds it. */
async function ensureFixture(spec: FixtureSpec, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, fileName(spec));
  if (existsSync(path)) return path;
  const tmp = `${path}.tmp-${process.pid}`;
  const gop = spec.fps * KEYFRAME_INTERVAL_SECONDS;
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(spec.seconds),
    '-c:v', 'libx264', '-profile:v', spec.profile, '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
    '-b:v', `${spec.videoKbps}k`, '-maxrate', `${spec.videoKbps}k`, '-bufsize', `${spec.videoKbps}k`,
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0',
    '-c:a', 'aac', '-b:a', `${spec.audioKbps}k`, '-ar', '48000', '-ac', '2',
    '-f', 'flv', tmp,
  ];
  await run('ffmpeg', args);
  renameSync(tmp, path);
  return path;
}

function isConfig(kind: FixtureTag['kind'], body: Buffer): boolean {
  if (kind === 'video') return body[1] === 0; // AVC sequence header
  if (kind === 'audio') return body[0]! >> 4 === 10 && body[1] === 0; // AAC sequence header
  return false;
}

export async function loadFixture(spec: FixtureSpec, dir: string): Promise<Fixture> {
  const path = await ensureFixture(spec, dir);
  const { tags } = await readFlvFile(path);
  const headers: FixtureTag[] = [];
  const frames: FixtureTag[] = [];
  let payloadBytes = 0;
  for (const tag of tags) {
    if (tag.kind === 'data') continue; // onMetaData: optional, not replayed
    const probe = tag.kind === 'video' && (tag.body[0]! & 0x0f) === 7 && tag.body[1] === 1;
    const item: FixtureTag = { kind: tag.kind, timestamp: tag.timestamp, body: tag.body, probe };
    if (isConfig(tag.kind, tag.body)) headers.push(item);
    else {
      frames.push(item);
      payloadBytes += tag.body.length;
    }
  }
  frames.sort((a, b) => a.timestamp - b.timestamp);
  const videoFramesPerLoop = frames.filter((f) => f.probe).length;
  if (videoFramesPerLoop === 0) throw new Error(`fixture ${path} has no H.264 frames`);
  // The next loop starts one frame duration after the last frame of either track.
  const videoStep = 1000 / spec.fps;
  const audioStep = (1024 * 1000) / 48000;
  let loopMs = 0;
  for (const f of frames) loopMs = Math.max(loopMs, Math.ceil(f.timestamp + (f.kind === 'video' ? videoStep : audioStep)));
  return { spec, path, headers, frames, loopMs, videoFramesPerLoop, bitrateBps: (payloadBytes * 8 * 1000) / loopMs };
}
