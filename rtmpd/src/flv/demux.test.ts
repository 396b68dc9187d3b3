import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MediaParseError } from '../codec/errors.ts';
import { expectResultOrMediaParseError } from '../../test/support/malformed.ts';
import { prng, randomInt } from '../../test/support/random.ts';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { FlvDemuxer, FlvTagTooLargeError } from './demux.ts';
import { FLV_FILE_HEADER, flvTag } from './mux.ts';

const fixture = (name: string) => new URL(`./testdata/${name}`, import.meta.url).pathname;
const file = readFileSync(fixture('h264_aac.flv'));

describe('FlvDemuxer', () => {
  it('reads the header and all tags of a real file', async () => {
    const { header, tags } = await readFlvFile(fixture('h264_aac.flv'));
    expect(header).toEqual({ version: 1, hasAudio: true, hasVideo: true });
    expect(tags[0]!.kind).toBe('data'); // onMetaData
    expect(tags.filter((t) => t.kind === 'video')).toHaveLength(27); // sequence header + 25 frames + end of sequence
    expect(tags.every((t, i) => i === 0 || t.timestamp >= 0)).toBe(true);
  });

  it('gives identical tags for any chunking (sizes 1..64 and random)', async () => {
    const { tags: whole } = await readFlvFile(fixture('h264_aac.flv'));
    const sizes = [1, 2, 3, 7, 11, 13, 64, 4096];
    const rand = prng(7);
    for (const size of [...sizes, -1]) {
      const d = new FlvDemuxer();
      const got = [];
      for (let pos = 0; pos < file.length;) {
        const n = size > 0 ? size : 1 + randomInt(rand, 3000);
        got.push(...d.push(file.subarray(pos, pos + n)));
        pos += n;
      }
      d.end();
      expect(got.length).toBe(whole.length);
      for (let i = 0; i < got.length; i++) {
        expect(got[i]!.kind).toBe(whole[i]!.kind);
        expect(got[i]!.timestamp).toBe(whole[i]!.timestamp);
        expect(got[i]!.body.equals(whole[i]!.body)).toBe(true);
      }
    }
  });

  it('does not copy tags that arrive whole', () => {
    const d = new FlvDemuxer();
    const tags = d.push(file);
    expect(tags.every((t) => t.body.buffer === file.buffer)).toBe(true);
  });

  it('refuses a tag over maxTagBytes from its 11-byte header, before holding its body, and takes one of that size', () => {
    const header = FLV_FILE_HEADER(false, true);
    const atLimit = new FlvDemuxer({ maxTagBytes: 1000 }).push(Buffer.concat([header, flvTag('video', 0, Buffer.alloc(1000, 0x17))]));
    expect(atLimit.map((t) => t.body.length)).toEqual([1000]);
    const d = new FlvDemuxer({ maxTagBytes: 1000 });
    expect(() => d.push(Buffer.concat([header, flvTag('video', 0, Buffer.alloc(1001, 0x17)).subarray(0, 11)]))).toThrow(
      new FlvTagTooLargeError(1001, 1000),
    );
  });

  it('handles TimestampExtended', () => {
    const d = new FlvDemuxer();
    const [tag] = d.push(Buffer.concat([FLV_FILE_HEADER(false, true), flvTag('video', 0xfedcba98, Buffer.from([0x17]))]));
    expect(tag!.timestamp).toBe(0xfedcba98);
  });

  it('throws MediaParseError on garbage', () => {
    const bad = (b: Buffer) => () => {
      const d = new FlvDemuxer();
      d.push(b);
      d.end();
    };
    expect(bad(Buffer.from('GIF89a-not-flv'))).toThrow(/signature/);
    const tag = flvTag('video', 0, Buffer.from([1, 2, 3]));
    const head = FLV_FILE_HEADER(true, true);
    expect(bad(Buffer.concat([head, Buffer.from([7]), tag.subarray(1)]))).toThrow(/tag type 7/);
    const wrongPrev = Buffer.from(tag);
    wrongPrev.writeUInt32BE(99, wrongPrev.length - 4);
    expect(bad(Buffer.concat([head, wrongPrev]))).toThrow(/PreviousTagSize/);
    const zeroPrev = Buffer.from(tag);
    zeroPrev.writeUInt32BE(0, zeroPrev.length - 4);
    expect(bad(Buffer.concat([head, zeroPrev]))).toThrow(/PreviousTagSize 0 does not match/);
    for (const offset of [8, 1025]) {
      const badOffset = Buffer.concat([head, Buffer.alloc(1100)]);
      badOffset.writeUInt32BE(offset, 5);
      expect(bad(badOffset)).toThrow(`FLV DataOffset ${offset} invalid`);
    }
    const huge = Buffer.from(tag);
    huge[1] = 0xff;
    huge[2] = 0xff;
    huge[3] = 0xff;
    expect(bad(Buffer.concat([head, huge]))).toThrow(/ended inside a tag/); // the largest size the 24-bit field holds, cut short
    expect(bad(Buffer.concat([head, tag.subarray(0, 9)]))).toThrow(/ended inside a tag/);
    expect(bad(head.subarray(0, 5))).toThrow(/before the file header/);
    const d = new FlvDemuxer();
    expect(() => d.push(Buffer.concat([head, wrongPrev]))).toThrow(MediaParseError);
    expect(() => d.push(tag)).toThrow(/already failed/);
  });

  it('random corruption: tags or MediaParseError, never a hang', () => {
    const rand = prng(42);
    for (let i = 0; i < 2000; i++) {
      const copy = Buffer.from(file.subarray(0, 2000 + randomInt(rand, 4000)));
      for (let e = 0; e < 1 + randomInt(rand, 4); e++) copy[randomInt(rand, copy.length)] = randomInt(rand, 256);
      expectResultOrMediaParseError(() => {
        const d = new FlvDemuxer();
        for (let pos = 0; pos < copy.length; pos += 500) d.push(copy.subarray(pos, pos + 500));
      }, `corruption #${i}`);
    }
  });
});
