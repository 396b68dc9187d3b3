// Real media for in-process tests: ffmpeg encodes a short lavfi clip to FLV
// once per test run, and publishFlv feeds its tags into a hub as an RTMP
// publisher would, without a network in between.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readFlvFile } from '../../src/flv/demux.ts';
import type { StreamHub } from '../../src/hub/hub.ts';
import type { Stream } from '../../src/hub/stream.ts';

const run = promisify(execFile);

export interface ClipOptions {
  width: number;
  height: number;
  seconds: number;
  /** ffmpeg video encoder arguments; H.264 by default. */
  videoCodec?: string[];
  /** ffmpeg audio encoder arguments; AAC by default. */
  audioCodec?: string[];
  /** A video filter, e.g. noise that keeps the encoder from compressing the pattern away. */
  videoFilter?: string;
}

/** Encodes (or reuses) a testsrc2 + sine FLV clip; returns its path. */
export async function lavfiClip({
  width,
  height,
  seconds,
  videoCodec = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25'],
  audioCodec = ['-c:a', 'aac'],
  videoFilter,
}: ClipOptions): Promise<string> {
  const dir = join(tmpdir(), 'rtmpd-test-clips');
  const name = [`testsrc2-${width}x${height}-${seconds}s`, ...videoCodec, ...audioCodec, ...(videoFilter ? [videoFilter] : [])];
  const path = join(dir, `${name.join('_').replace(/[^\w.=-]/g, '_')}.flv`);
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${width}x${height}:rate=25`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440',
    '-t',
    String(seconds),
    ...(videoFilter ? ['-vf', videoFilter] : []),
    ...videoCodec,
    ...audioCodec,
    '-f',
    'flv',
    temp,
  ]);
  await run('mv', [temp, path]);
  return path;
}

export interface FakePublisher {
  stream: Stream;
  closedWith: string | undefined;
}

/** Publishes app/key on the hub and pushes every tag of the FLV file into it, as fast as it can. */
export async function publishFlv(hub: StreamHub, app: string, key: string, path: string): Promise<FakePublisher> {
  const { tags } = await readFlvFile(path);
  const publisher: FakePublisher = { stream: undefined as unknown as Stream, closedWith: undefined };
  publisher.stream = hub.publish(app, key, {
    protocol: 'rtmp',
    remoteAddress: '127.0.0.1:50000',
    close: (reason) => (publisher.closedWith = reason),
  });
  const now = performance.now();
  for (const tag of tags) {
    if (tag.kind === 'video') publisher.stream.pushVideo(tag.timestamp, tag.body, now);
    else if (tag.kind === 'audio') publisher.stream.pushAudio(tag.timestamp, tag.body, now);
    else publisher.stream.setMetadata(tag.timestamp, tag.body, {}, now);
  }
  return publisher;
}
