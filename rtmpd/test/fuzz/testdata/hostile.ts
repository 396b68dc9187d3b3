// Regenerates the hand-made hostile inputs in this folder, which fuzz.test.ts
// replays and the fuzzer starts from: byte strings a client sends after the
// handshake (as the captures), each as small as it can be. refused-<reason>.bin
// must end in an RtmpProtocolError with that reason. hevc-*.bin are Enhanced
// RTMP HEVC sessions (the captures have H.264 only) with the SPS cut where
// rtmpd reads the picture size and the frame rate; the stream counts a record
// it cannot describe as a parse error, so they give the fuzzer that path to
// mutate rather than assert an outcome (codec/hevc.test.ts does).
// Usage: node rtmpd/test/fuzz/testdata/hostile.ts
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHevcDecoderConfig } from '../../../src/codec/hevc.ts';
import { chunkedLength, writeChunks } from '../../../src/rtmp/wire/chunk-writer.ts';
import { MessageType } from '../../../src/rtmp/wire/message-types.ts';

const CHUNK_SIZE = 128; // the reader's until a Set Chunk Size
const HVCC = readFileSync(join(import.meta.dirname, '../../../src/codec/testdata/hevc_vui_2997_640x360.hvcc'));

/** One message in chunks on chunk stream 4, message stream 1. */
function message(typeId: number, body: Buffer, timestamp = 0): Buffer {
  const out = Buffer.alloc(chunkedLength(4, timestamp, body.length, CHUNK_SIZE));
  writeChunks(out, 0, 4, typeId, 1, timestamp, body, CHUNK_SIZE);
  return out;
}

/** The fixture's hvcC with its SPS cut to `length` bytes (VPS, SPS and PPS arrays only). */
function hvccWithSpsCut(length: number): Buffer {
  const { vps, sps, pps } = parseHevcDecoderConfig(HVCC);
  const arrays = [vps[0]!, sps[0]!.subarray(0, length), pps[0]!].map((nal) =>
    Buffer.concat([Buffer.from([0x80 | ((nal[0]! >> 1) & 0x3f), 0, 1, nal.length >> 8, nal.length & 0xff]), nal]),
  );
  return Buffer.concat([HVCC.subarray(0, 22), Buffer.from([arrays.length]), ...arrays]);
}

/** An Enhanced RTMP HEVC SequenceStart with `hvcc`, then a CodedFrames keyframe holding an IDR slice stub. */
function enhancedHevc(hvcc: Buffer): Buffer {
  const header = (packetType: number) => Buffer.concat([Buffer.from([0x90 | packetType]), Buffer.from('hvc1', 'latin1')]);
  const idr = Buffer.from([0, 0, 0, 4, 19 << 1, 1, 0xaf, 0x00]);
  return Buffer.concat([
    message(MessageType.video, Buffer.concat([header(0), hvcc])),
    message(MessageType.video, Buffer.concat([header(1), Buffer.alloc(3), idr]), 40),
  ]);
}

// An SPS cut inside vui_num_units_in_tick: the picture size, and no frame rate.
const cutInTiming = hvccWithSpsCut(40);
assert.deepEqual(
  (({ width, height, fps }) => ({ width, height, fps }))(parseHevcDecoderConfig(cutInTiming)),
  { width: 640, height: 360, fps: undefined },
);
// An SPS cut inside the picture size: the record is refused.
assert.throws(() => parseHevcDecoderConfig(hvccWithSpsCut(17)));

const inputs: Record<string, Buffer> = {
  // A message length over the reader's 1 MiB limit.
  'refused-message_too_large': Buffer.from([0x04, 0, 0, 0, 0x20, 0, 0, MessageType.video, 1, 0, 0, 0]),
  // fmt 3 on a chunk stream that has had no header.
  'refused-chunk_no_previous_header': Buffer.from([0xc5, 0x17, 0x00]),
  // Set Chunk Size 0.
  'refused-bad_set_chunk_size': message(MessageType.setChunkSize, Buffer.alloc(4)),
  // A command whose AMF0 string says 65535 bytes and has 2.
  'refused-amf_truncated': message(MessageType.commandAmf0, Buffer.from([0x02, 0xff, 0xff, 0x63, 0x6f])),
  // An aggregate whose one sub-message says 1000 bytes and has 4.
  'refused-bad_aggregate': message(
    MessageType.aggregate,
    Buffer.from([MessageType.video, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0]),
  ),
  'hevc-sps-cut-in-vui-timing': enhancedHevc(cutInTiming),
  'hevc-sps-cut-in-picture-size': enhancedHevc(hvccWithSpsCut(17)),
};
for (const [name, bytes] of Object.entries(inputs)) writeFileSync(join(import.meta.dirname, `${name}.bin`), bytes);
