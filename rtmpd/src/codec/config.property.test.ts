// Properties of the codec config parsers (avcC, hvcC, av1C, AudioSpecificConfig,
// the H.264 SPS) and the keyframe detectors over real configs changed as a
// broken encoder or an attacker would: they parse or fail with a
// MediaParseError, never with anything else.
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureTags, mutated } from '../../test/support/mutations.ts';
import { parseAudioSpecificConfig } from './aac.ts';
import { av1IsKeyframe, parseAv1CodecConfig } from './av1.ts';
import { MediaParseError } from './errors.ts';
import { h264HasIdr, parseAvcDecoderConfig, parseH264Sps } from './h264.ts';
import { hevcHasIrap, parseHevcDecoderConfig } from './hevc.ts';

const testdata = new URL('testdata/', import.meta.url);
const seeds = (extension: string) =>
  readdirSync(testdata)
    .filter((f) => f.endsWith(extension))
    .map((f) => readFileSync(new URL(f, testdata)));

function failsCleanly(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    expect(err).toBeInstanceOf(MediaParseError);
  }
}

const parsers: [string, (data: Buffer) => unknown, Buffer[]][] = [
  [
    'avcC and its SPS',
    (data) => {
      const config = parseAvcDecoderConfig(data);
      for (const sps of config.sps) parseH264Sps(sps);
    },
    seeds('.avcc'),
  ],
  ['hvcC', parseHevcDecoderConfig, seeds('.hvcc')],
  ['av1C', parseAv1CodecConfig, seeds('.av1c')],
  ['AudioSpecificConfig', parseAudioSpecificConfig, seeds('.asc')],
];

describe('codec config properties', () => {
  it.each(parsers)('%s parses or fails with a MediaParseError', (_name, parse, configs) => {
    expect(configs.length).toBeGreaterThan(0);
    fc.assert(
      fc.property(mutated(configs), (data) => failsCleanly(() => parse(data))),
      { numRuns: 3000 },
    );
  });

  it('keyframe detectors read any frame, or fail with a MediaParseError', () => {
    // Frame payloads of the fixtures: the bytes after each video tag's header.
    const frames = fixtureTags()
      .filter((t) => t.kind === 'video' && t.body.length > 8)
      .map((t) => t.body.subarray(5));
    fc.assert(
      fc.property(mutated(frames.slice(0, 40)), fc.constantFrom(1, 2, 4), (frame, nalLengthSize) => {
        failsCleanly(() => h264HasIdr(frame, nalLengthSize));
        failsCleanly(() => hevcHasIrap(frame, nalLengthSize));
        failsCleanly(() => av1IsKeyframe(frame));
      }),
      { numRuns: 3000 },
    );
  });
});
