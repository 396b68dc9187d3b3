// The one ffmpeg command line of a transcode: the source read from rtmpd over
// loopback RTMP, split once, and each rendition scaled, encoded (libx264,
// AAC) and published back. Keyframes are forced every KEYFRAME_SECONDS of
// source time in every rendition, so segments of all renditions start at the
// same instants and a player can switch between them at any segment.
import type { Rendition } from '../config.ts';

export const KEYFRAME_SECONDS = 2;

export interface RenditionOutput {
  rendition: Rendition;
  /** Where it is published: rtmp://127.0.0.1:<port>/<app>/<key>_<name>?<credential>. */
  url: string;
}

/**
 * ffmpeg's arguments; `sourceFps` (when the source's SPS says) sets the GOP of renditions that keep the source's rate.
 * `maxPixels` (ffmpegMaxPixels of --max-decode-pixels) bounds the decoder's picture, so parameter sets sent in-band later cannot pass it.
 */
export function transcodeArgs(input: string, outputs: readonly RenditionOutput[], maxPixels: number, sourceFps?: number): string[] {
  const labels = outputs.map((_, i) => `[s${i}]`);
  const chains = outputs.map(({ rendition }, i) => {
    const fps = rendition.fps === undefined ? '' : `fps=${rendition.fps},`;
    return `${labels[i]}${fps}scale=-2:${rendition.height}[v${i}]`;
  });
  const filter = [`[0:v]split=${outputs.length}${labels.join('')}`, ...chains].join(';');
  return [
    ...['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning'],
    ...['-max_pixels', String(maxPixels), '-i', input],
    ...['-filter_complex', filter],
    ...outputs.flatMap(({ rendition, url }, i) => renditionArgs(rendition, i, url, rendition.fps ?? sourceFps)),
  ];
}

function renditionArgs(rendition: Rendition, index: number, url: string, fps: number | undefined): string[] {
  const kbps = rendition.videoBitrate;
  const gop = fps === undefined ? [] : ['-g', String(Math.max(1, Math.round(fps * KEYFRAME_SECONDS)))];
  return [
    ...['-map', `[v${index}]`, '-map', '0:a?'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p'],
    ...['-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps * 2}k`],
    ...gop,
    ...['-sc_threshold', '0', '-force_key_frames', `expr:gte(t,n_forced*${KEYFRAME_SECONDS})`],
    ...['-c:a', 'aac', '-b:a', `${rendition.audioBitrate}k`],
    ...['-f', 'flv', url],
  ];
}
