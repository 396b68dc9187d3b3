import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import type Ffmpeg from 'fluent-ffmpeg';

/** The containers ffmpeg reads one keyframe from: raw Annex-B, or IVF for AV1. */
export type KeyframeFormat = 'h264' | 'hevc' | 'ivf';

export interface DecodeRequest {
  ffmpegPath: string;
  format: KeyframeFormat;
  /** One self-contained keyframe: parameter sets + the coded picture. */
  keyframe: Buffer;
  /** Output width; 0 keeps the source size. Height follows the aspect ratio (kept even). */
  width: number;
  /** ffmpeg -q:v, 1 (best) to 31. */
  quality: number;
  /** The decoder's -max_pixels (of the coded picture): a picture the keyframe's own parameter sets declare larger is refused. */
  maxPixels: number;
  timeoutMs: number;
}

export class DecodeError extends Error {
  override name = 'DecodeError';
}

/** fluent-ffmpeg, loaded by the first decode: a server that never makes a snapshot does not carry it. */
let fluentFfmpeg: Promise<typeof Ffmpeg> | undefined;

/**
 * Decodes one keyframe to a JPEG with ffmpeg. The child is killed when it
 * runs past the timeout, so a wedged decoder never holds a pool slot.
 */
export async function decodeJpeg(request: DecodeRequest): Promise<Buffer> {
  // fluent-ffmpeg 2.1 throws an uncaught TypeError when spawn itself fails
  // (ENOENT, EACCES), which would take the whole server down; so a missing
  // binary is caught here, before it is spawned.
  if (!isExecutable(request.ffmpegPath)) throw new DecodeError(`ffmpeg not found or not executable: ${request.ffmpegPath} (--ffmpeg-path)`);
  const ffmpeg = await (fluentFfmpeg ??= import('fluent-ffmpeg').then((m) => m.default));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    // ffmpeg's exit and the end of its piped stdout race; the image is whole once both happened.
    let exited = false;
    let drained = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else if (chunks.length === 0) reject(new DecodeError('ffmpeg produced no image'));
      else resolve(Buffer.concat(chunks));
    };
    const command = withoutCapabilityProbes(ffmpeg(Readable.from([request.keyframe])))
      .setFfmpegPath(request.ffmpegPath)
      .inputFormat(request.format)
      // One picture has nothing to spread over frame threads; each would hold its own buffers
      // (an 8192 × 4352 keyframe: 318 MiB of RSS with ffmpeg's own choice on 2 cores, 288 MiB with one; docs/performance.md).
      .inputOptions(['-threads', '1', '-max_pixels', String(request.maxPixels)])
      .outputOptions(['-frames:v', '1', '-q:v', String(request.quality)])
      .outputOptions(request.width > 0 ? ['-vf', `scale=${request.width}:-2`] : [])
      .outputOptions(['-f', 'image2', '-c:v', 'mjpeg'])
      .on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
        // fluent-ffmpeg calls it an error when ffmpeg's exit is seen more than 20 ms after its stdout
        // closed, as happens on a busy machine; the picture is good if it arrived whole.
        if (err.message === OUTPUT_CLOSED && drained && isWholeJpeg(chunks)) settle(undefined);
        else settle(new DecodeError(`${err.message}${stderrTail(stderr)}`));
      })
      .on('end', () => {
        exited = true;
        if (drained) settle(undefined);
      });
    const timer = setTimeout(() => {
      command.kill('SIGKILL');
      settle(new DecodeError(`ffmpeg did not finish within ${request.timeoutMs} ms`));
    }, request.timeoutMs);
    const output = command.pipe();
    output.on('data', (chunk: Buffer) => chunks.push(chunk));
    output.on('end', () => {
      drained = true;
      if (exited) settle(undefined);
    });
    output.on('error', (err: Error) => settle(new DecodeError(err.message)));
  });
}

const OUTPUT_CLOSED = 'Output stream closed';

/**
 * fluent-ffmpeg asks `ffmpeg -formats` and `-encoders` before a command runs
 * (to check its formats and codecs, and to add `-strict experimental` to an
 * experimental -vcodec or -acodec), answered once per process by whichever
 * ffmpeg ran first: after --ffmpeg-path changed live, every decode was judged
 * by the old binary (one without the h264 demuxer failed every h264 snapshot
 * through the new one until a restart). The formats here are fixed, the codec
 * is named by -c:v (never experimental), and ffmpeg refuses what it cannot
 * read itself, with its stderr in the error; so this command asks nothing,
 * which also saves the two probe runs per process. `_checkCapabilities` is a
 * private step of fluent-ffmpeg 2.1, its last release.
 */
function withoutCapabilityProbes(command: Ffmpeg.FfmpegCommand): Ffmpeg.FfmpegCommand {
  return Object.assign(command, {
    _checkCapabilities: (done: (err?: Error) => void) => done(),
    availableEncoders: (done: (err: Error | null, encoders: Ffmpeg.Encoders) => void) => done(null, {}),
  });
}

/** Starts with a JPEG's start-of-image marker and ends with its end-of-image marker. */
function isWholeJpeg(chunks: Buffer[]): boolean {
  const first = chunks[0];
  const last = chunks.at(-1);
  return (
    first !== undefined && last !== undefined && first[0] === 0xff && first[1] === 0xd8 && last.at(-2) === 0xff && last.at(-1) === 0xd9
  );
}

function stderrTail(stderr: string | null): string {
  const last = stderr?.trim().split('\n').slice(-2).join(' | ');
  return last ? `: ${last}` : '';
}

/** True when `command` is an executable path, or a name found on PATH. */
function isExecutable(command: string): boolean {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, command));
  return candidates.some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
