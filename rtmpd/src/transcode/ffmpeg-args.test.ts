import { describe, expect, it } from 'vitest';
import { configSchema } from '../config.ts';
import { FIRST_OUTPUT_FD, KEYFRAME_SECONDS, transcodeArgs } from './ffmpeg-args.ts';

const rendition = (name: string, height: number, more: object = {}) =>
  configSchema.shape.transcodeRules.parse([{ renditions: [{ name, height, videoBitrate: 1000, ...more }] }])[0]!.renditions[0]!;

/** The arguments of output `index`: from its -map of the scaled video to its pipe. */
const outputArgs = (args: string[], index: number): string[] =>
  args.slice(args.indexOf(`[v${index}]`) - 1, args.indexOf(`pipe:${FIRST_OUTPUT_FD + index}`) + 1);

describe('transcodeArgs', () => {
  const args = transcodeArgs([rendition('720p', 720, { fps: 30 }), rendition('360p', 360, { audioBitrate: 64 })], 1920 * 1080, 25);

  it('reads the source as FLV from stdin and writes each rendition as FLV to a pipe of its own: no URL, nothing to guess', () => {
    expect(args.slice(args.indexOf('-i') - 2, args.indexOf('-i') + 2)).toEqual(['-f', 'flv', '-i', 'pipe:0']);
    expect(outputArgs(args, 0).slice(-5)).toEqual(['-f', 'flv', '-flvflags', 'no_duration_filesize', 'pipe:3']);
    expect(outputArgs(args, 1).at(-1)).toBe('pipe:4');
    expect(args.filter((arg) => arg.includes('://'))).toEqual([]);
  });

  it('decodes once, a picture of at most --max-decode-pixels, and scales each rendition from one split', () => {
    expect(args.filter((a) => a === '-i')).toHaveLength(1);
    expect(args.slice(args.indexOf('-max_pixels'), args.indexOf('-i') + 1)).toEqual([
      '-max_pixels',
      String(1920 * 1080),
      '-f',
      'flv',
      '-i',
    ]);
    expect(args[args.indexOf('-filter_complex') + 1]).toBe('[0:v]split=2[s0][s1];[s0]fps=30,scale=-2:720[v0];[s1]scale=-2:360[v1]');
  });

  it('forces keyframes at the same source times in every rendition, with a GOP of its own frame rate', () => {
    const high = outputArgs(args, 0);
    const low = outputArgs(args, 1);
    for (const output of [high, low]) {
      expect(output.join(' ')).toContain(`-sc_threshold 0 -force_key_frames expr:gte(t,n_forced*${KEYFRAME_SECONDS})`);
      expect(output.join(' ')).toContain('-c:v libx264 -preset veryfast -tune zerolatency');
    }
    expect(high.join(' ')).toContain(`-g ${30 * KEYFRAME_SECONDS}`);
    expect(low.join(' ')).toContain(`-g ${25 * KEYFRAME_SECONDS}`);
    expect(low.join(' ')).toContain('-b:v 1000k -maxrate 1000k -bufsize 2000k');
    expect(low.join(' ')).toContain('-c:a aac -b:a 64k -f flv');
  });
});
