// Real media for in-process tests: FLV files read whole, a short clip of the
// test pattern encoded once, and publishFlv, which feeds a file's tags into a
// hub as an RTMP publisher would, without a network in between.
import { readFile } from 'node:fs/promises';
import { FlvDemuxer, type FlvFileHeader, type FlvTagRecord } from '../../src/flv/demux.ts';
import type { StreamHub } from '../../src/hub/hub.ts';
import type { Stream } from '../../src/hub/stream.ts';
import { encodeOnce, testPatternInputs } from './clips.ts';

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

/** Encodes (or reuses) an FLV clip of the test pattern; returns its path. */
export function lavfiClip({
  width,
  height,
  seconds,
  videoCodec = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25'],
  audioCodec = ['-c:a', 'aac'],
  videoFilter,
}: ClipOptions): Promise<string> {
  const name = [`testsrc2-${width}x${height}-${seconds}s`, ...videoCodec, ...audioCodec, ...(videoFilter ? [videoFilter] : [])];
  return encodeOnce(`${name.join('_').replace(/[^\w.=-]/g, '_')}.flv`, [
    ...testPatternInputs(`${width}x${height}`),
    '-t',
    String(seconds),
    ...(videoFilter ? ['-vf', videoFilter] : []),
    ...videoCodec,
    ...audioCodec,
    '-f',
    'flv',
  ]);
}

/** Reads and demuxes a whole FLV file. */
export async function readFlvFile(path: string): Promise<{ header: FlvFileHeader; tags: FlvTagRecord[] }> {
  const demuxer = new FlvDemuxer();
  const tags = demuxer.push(await readFile(path));
  demuxer.end();
  return { header: demuxer.header!, tags };
}

export interface FakePublisher {
  stream: Stream;
  closedWith: string | undefined;
}

/** Publishes app/key on the hub and pushes every tag of the FLV file into it, as fast as it can. */
export async function publishFlv(hub: StreamHub, app: string, key: string, path: string): Promise<FakePublisher> {
  return publishTags(hub, app, key, (await readFlvFile(path)).tags);
}

/** Publishes app/key on the hub and pushes every tag into it, as fast as it can. */
export function publishTags(hub: StreamHub, app: string, key: string, tags: FlvTagRecord[]): FakePublisher {
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
