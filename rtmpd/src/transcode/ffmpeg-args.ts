// The one ffmpeg command line of a transcode: the source read as FLV from
// its stdin, split once, and each rendition scaled, encoded (libx264, AAC)
// and written as FLV to a pipe of its own (fd 3, 4, ...; transcode/pipes.ts).
// No URL and no credential: nothing on the command line, which any process
// of the pod can read, opens a stream. Keyframes are forced every
// KEYFRAME_SECONDS of source time in every rendition, so segments of all
// renditions start at the same instants and a player can switch between
// them at any segment.
import type { Rendition } from '../config.ts';

export const KEYFRAME_SECONDS = 2;

/** The file descriptor of the first rendition's output; the next ones follow. */
export const FIRST_OUTPUT_FD = 3;

/**
 * ffmpeg's arguments; `sourceFps` (when the source's SPS says) sets the GOP of renditions that keep the source's rate.
 * `maxPixels` (ffmpegMaxPixels of --max-decode-pixels) bounds the decoder's picture, so parameter sets sent in-band later cannot pass it.
 */
export function transcodeArgs(renditions: readonly Rendition[], maxPixels: number, sourceFps?: number): string[] {
  const labels = renditions.map((_, i) => `[s${i}]`);
  const chains = renditions.map((rendition, i) => {
    const fps = rendition.fps === undefined ? '' : `fps=${rendition.fps},`;
    return `${labels[i]}${fps}scale=-2:${rendition.height}[v${i}]`;
  });
  const filter = [`[0:v]split=${renditions.length}${labels.join('')}`, ...chains].join(';');
  return [
    ...['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning'],
    ...['-max_pixels', String(maxPixels), '-f', 'flv', '-i', 'pipe:0'],
    ...['-filter_complex', filter],
    ...renditions.flatMap((rendition, i) => renditionArgs(rendition, i, rendition.fps ?? sourceFps)),
  ];
}

function renditionArgs(rendition: Rendition, index: number, fps: number | undefined): string[] {
  const kbps = rendition.videoBitrate;
  const gop = fps === undefined ? [] : ['-g', String(Math.max(1, Math.round(fps * KEYFRAME_SECONDS)))];
  return [
    ...['-map', `[v${index}]`, '-map', '0:a?'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p'],
    ...['-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps * 2}k`],
    ...gop,
    ...['-sc_threshold', '0', '-force_key_frames', `expr:gte(t,n_forced*${KEYFRAME_SECONDS})`],
    ...['-c:a', 'aac', '-b:a', `${rendition.audioBitrate}k`],
    // A pipe cannot be seeked back into to fill in the duration and size at the end.
    ...['-f', 'flv', '-flvflags', 'no_duration_filesize', `pipe:${FIRST_OUTPUT_FD + index}`],
  ];
}
