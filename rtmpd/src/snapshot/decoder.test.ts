import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeJpeg, DecodeError } from './decoder.ts';

const run = promisify(execFile);
let dir: string;
let jpeg: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rtmpd-decoder-'));
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=red:s=32x32', '-frames:v', '1', join(dir, 'red.jpg')]);
  jpeg = await readFile(join(dir, 'red.jpg'));
});

/**
 * An "ffmpeg" that writes `image` to stdout, closes stdout and exits only
 * 300 ms later: what a loaded machine looks like to fluent-ffmpeg, whose
 * exit event then arrives well after the output stream closed. Format
 * queries go to the real ffmpeg.
 */
async function slowExitingFfmpeg(image: Buffer): Promise<string> {
  const imagePath = join(dir, `image-${image.length}.bin`);
  await writeFile(imagePath, image);
  const script = join(dir, `ffmpeg-${image.length}.sh`);
  await writeFile(
    script,
    `#!/bin/sh\ncase " $* " in *" -formats "*|*" -encoders "*|*" -codecs "*|*" -filters "*) exec ffmpeg "$@";; esac\ncat '${imagePath}'\nexec 1>&-\nsleep 0.3\n`,
  );
  await chmod(script, 0o755);
  return script;
}

const request = (ffmpegPath: string) => ({
  ffmpegPath,
  format: 'h264' as const,
  keyframe: Buffer.alloc(64),
  width: 0,
  quality: 5,
  maxPixels: 64 * 64,
  timeoutMs: 5000,
});

describe('decodeJpeg', () => {
  it('keeps a whole picture when ffmpeg exits long after closing its output', async () => {
    expect(await decodeJpeg(request(await slowExitingFfmpeg(jpeg)))).toEqual(jpeg);
  });

  it('refuses a truncated picture in the same situation', async () => {
    await expect(decodeJpeg(request(await slowExitingFfmpeg(jpeg.subarray(0, jpeg.length - 10))))).rejects.toThrow(DecodeError);
  });

  it("decodes a real keyframe as large as -max_pixels, and refuses one a pixel larger in ffmpeg's own decoder", async () => {
    const path = join(dir, '320x240.h264');
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=s=320x240',
      '-frames:v',
      '1',
      '-c:v',
      'libx264',
      '-f',
      'h264',
      path,
    ]);
    const keyframe = await readFile(path);
    const decoded = await decodeJpeg({ ...request('ffmpeg'), keyframe, maxPixels: 320 * 240 });
    expect(decoded.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    await expect(decodeJpeg({ ...request('ffmpeg'), keyframe, maxPixels: 320 * 240 - 1 })).rejects.toThrow(/Error while opening decoder/);
  });
});
