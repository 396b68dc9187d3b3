// Properties of the FLV and Enhanced RTMP tag parsers over real tags changed
// as a broken encoder or an attacker would: they inspect or fail with a
// MediaParseError, never with anything else; and the FLV demuxer gives the
// same tags however a file is cut into reads.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureTags, mutated } from '../../test/support/mutations.ts';
import { MediaParseError } from '../codec/errors.ts';
import { FlvDemuxer } from './demux.ts';
import { inspectAudio, inspectVideo } from './tag.ts';
import { describeAudioTrack, describeVideoTrack } from './track.ts';

const tags = fixtureTags();
const video = tags.filter((t) => t.kind === 'video').map((t) => t.body);
const audio = tags.filter((t) => t.kind === 'audio').map((t) => t.body);

function failsCleanly(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    expect(err).toBeInstanceOf(MediaParseError);
  }
}

describe('FLV tag properties', () => {
  it('inspects and describes any video body, or fails with a MediaParseError', () => {
    fc.assert(
      fc.property(mutated(video), fc.constantFrom(1, 2, 4), (body, nalLengthSize) =>
        failsCleanly(() => {
          const info = inspectVideo(body, nalLengthSize);
          if (info.sequenceHeader) describeVideoTrack(info);
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('inspects and describes any audio body, or fails with a MediaParseError', () => {
    fc.assert(
      fc.property(mutated(audio), (body) =>
        failsCleanly(() => {
          const info = inspectAudio(body);
          if (info.sequenceHeader || info.packet === 'frame') describeAudioTrack(info);
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('demuxes a file into the same tags however it is cut, and fails on a changed one only with a MediaParseError', () => {
    const file = readFileSync(new URL('testdata/h264_aac.flv', import.meta.url));
    const whole = new FlvDemuxer().push(file).map((t) => t.body.length);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const demuxer = new FlvDemuxer();
        const got: number[] = [];
        for (let at = 0, i = 0; at < file.length; at += sizes[i++ % sizes.length]!) {
          for (const tag of demuxer.push(file.subarray(at, at + sizes[i % sizes.length]!))) got.push(tag.body.length);
        }
        expect(got).toEqual(whole);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(mutated([file.subarray(0, 4000)]), (bytes) => failsCleanly(() => new FlvDemuxer().push(bytes))),
      { numRuns: 2000 },
    );
  });
});
