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
 * 300 ms later: its exit comes well after its output closed, as on a
 * loaded machine.
 */
async function slowExitingFfmpeg(image: Buffer): Promise<string> {
  const imagePath = join(dir, `image-${image.length}.bin`);
  await writeFile(imagePath, image);
  const script = join(dir, `ffmpeg-${image.length}.sh`);
  await writeFile(script, `#!/bin/sh\ncat '${imagePath}'\nexec 1>&-\nsleep 0.3\n`);
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

/** An "ffmpeg" at its own path, built without some of what real ffmpeg has: `-formats` leaves out `format`, which it refuses to read. */
async function ffmpegWithout(format: string): Promise<string> {
  const script = join(dir, `ffmpeg-without-${format}.sh`);
  await writeFile(
    script,
    `#!/bin/sh\ncase " $* " in *" -formats "*) ffmpeg "$@" | grep -v ' ${format} ';; *" -f ${format} "*) echo "Unknown input format: '${format}'" >&2; exit 1;; *) exec ffmpeg "$@";; esac\n`,
  );
  await chmod(script, 0o755);
  return script;
}

/** One real 320x240 H.264 keyframe (Annex B). */
async function realKeyframe(): Promise<Buffer> {
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
    '-y',
    path,
  ]);
  return readFile(path);
}

describe('decodeJpeg', () => {
  // First in the file, so that no other ffmpeg has been asked anything in this process before.
  it('asks the ffmpeg at the path it is given now, not the one a changed --ffmpeg-path named before', async () => {
    const keyframe = await realKeyframe();
    await expect(decodeJpeg({ ...request(await ffmpegWithout('h264')), keyframe, maxPixels: 320 * 240 })).rejects.toThrow(/h264/);
    const decoded = await decodeJpeg({ ...request('ffmpeg'), keyframe, maxPixels: 320 * 240 });
    expect(decoded.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it('says so when there is no ffmpeg at the path', async () => {
    await expect(decodeJpeg(request('/nonexistent/ffmpeg'))).rejects.toThrow(
      new DecodeError('ffmpeg not found or not executable: /nonexistent/ffmpeg (--ffmpeg-path)'),
    );
  });

  it('keeps a whole picture when ffmpeg exits long after closing its output', async () => {
    expect(await decodeJpeg(request(await slowExitingFfmpeg(jpeg)))).toEqual(jpeg);
  });

  it('refuses a truncated picture in the same situation', async () => {
    await expect(decodeJpeg(request(await slowExitingFfmpeg(jpeg.subarray(0, jpeg.length - 10))))).rejects.toThrow(DecodeError);
  });

  it("decodes a real keyframe as large as -max_pixels, and refuses one a pixel larger in ffmpeg's own decoder", async () => {
    const keyframe = await realKeyframe();
    const decoded = await decodeJpeg({ ...request('ffmpeg'), keyframe, maxPixels: 320 * 240 });
    expect(decoded.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    await expect(decodeJpeg({ ...request('ffmpeg'), keyframe, maxPixels: 320 * 240 - 1 })).rejects.toThrow(/Error while opening decoder/);
  });
});
