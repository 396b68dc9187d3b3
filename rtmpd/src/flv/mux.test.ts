import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { FlvDemuxer } from './demux.ts';
import { FLV_FILE_HEADER, flvTag } from './mux.ts';

const fixture = (name: string) => new URL(`./testdata/${name}`, import.meta.url).pathname;

describe('flvTag / FLV_FILE_HEADER', () => {
  it('writes the header and PreviousTagSize0', () => {
    expect(FLV_FILE_HEADER(true, true)).toEqual(Buffer.from('464c560105000000090000000000', 'hex').subarray(0, 13));
    expect(FLV_FILE_HEADER(false, true)[4]).toBe(1);
    expect(FLV_FILE_HEADER(true, false)[4]).toBe(4);
  });

  it('writes one contiguous tag with TimestampExtended and PreviousTagSize', () => {
    const tag = flvTag('video', 0x12345678, Buffer.from([1, 2, 3]));
    expect(tag.toString('hex')).toBe('09000003345678120000000102030000000e');
    expect(flvTag('data', 0, Buffer.alloc(0)).toString('hex')).toBe('12' + '000000' + '000000' + '00' + '000000' + '0000000b');
  });

  it('refuses bodies over 16 MiB', () => {
    expect(() => flvTag('audio', 0, Buffer.alloc(0x1000000))).toThrow(RangeError);
  });
});

describe('mux → demux round trip', () => {
  for (const name of ['h264_aac.flv', 'h264_mp3.flv', 'hevc_opus.flv', 'av1_aac.flv']) {
    it(`${name} re-muxes byte-exactly`, async () => {
      const original = readFileSync(fixture(name));
      const { header, tags } = await readFlvFile(fixture(name));
      const remuxed = Buffer.concat([
        FLV_FILE_HEADER(header.hasAudio, header.hasVideo),
        ...tags.map((t) => flvTag(t.kind, t.timestamp, t.body)),
      ]);
      expect(remuxed.equals(original)).toBe(true);
    });
  }
});

describe('ffprobe accepts what we mux', () => {
  it('a file rebuilt from demuxed tags (every other audio tag dropped, timestamps kept)', () => {
    const demuxer = new FlvDemuxer();
    const tags = demuxer.push(readFileSync(fixture('h264_aac.flv')));
    const kept = tags.filter((t, i) => t.kind !== 'audio' || i % 2 === 0 || t.timestamp === 0);
    const tmp = mkdtempSync(join(tmpdir(), 'flvmux-'));
    try {
      const file = join(tmp, 'out.flv');
      writeFileSync(file, Buffer.concat([FLV_FILE_HEADER(true, true), ...kept.map((t) => flvTag(t.kind, t.timestamp, t.body))]));
      const out = execFileSync('ffprobe', [
        '-v',
        'error',
        '-count_frames',
        '-select_streams',
        'v',
        '-show_entries',
        'stream=codec_name,width,height,nb_read_frames',
        '-of',
        'csv=p=0',
        file,
      ]);
      expect(out.toString().trim()).toBe('h264,320,240,25');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
