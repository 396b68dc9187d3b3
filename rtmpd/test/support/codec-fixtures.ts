// The codec tests' fixtures in rtmpd/src/codec/testdata (made by its
// generate.sh): real encoders' decoder configuration records, each with what
// ffprobe says of the same stream; and synthetic frames for tests of the hub's
// delivery, which reads no more of a frame than its header.
import { readFileSync } from 'node:fs';

const testdata = new URL('../../src/codec/testdata/', import.meta.url);

/** A fixture file's bytes (`h264_high_320x240.avcc`). */
export const codecFixture = (file: string): Buffer => readFileSync(new URL(file, testdata));

/** ffprobe's fields for the stream of the fixture `name` (from `<name>.json`). */
export const probedStream = (name: string): Record<string, string | number> =>
  (JSON.parse(codecFixture(`${name}.json`).toString()) as { streams: Record<string, string | number>[] }).streams[0]!;

/** A frame rate as ffprobe writes it, `30000/1001`, as a number. */
export function frameRate(ratio: string): number {
  const [numerator, denominator] = ratio.split('/').map(Number);
  return numerator! / denominator!;
}

/** An AVC frame the hub reads as one (a keyframe: an IDR slice), `size` bytes in all. */
export function avcFrame(size: number, keyframe: boolean): Buffer {
  const body = Buffer.alloc(size, 0x5a);
  body.set([keyframe ? 0x17 : 0x27, 1, 0, 0, 0], 0);
  body.writeUInt32BE(size - 9, 5);
  body[9] = keyframe ? 0x65 : 0x41;
  return body;
}
