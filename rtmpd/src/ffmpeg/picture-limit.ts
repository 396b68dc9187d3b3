// What ffmpeg is told about --max-decode-pixels, by snapshot/ and transcode/ alike: a
// picture declared over the limit is refused before any ffmpeg runs, and the
// decoder of one that is not gets -max_pixels, so in-band parameter sets sent
// later cannot pass the limit either.
import type { VideoTrackInfo } from '../flv/track.ts';

/**
 * The picture the track's sequence header declares ("WxH") when it has more pixels than `maxPixels`
 * (--max-decode-pixels); undefined when it has no more, or declares none (ffmpeg's -max_pixels still holds).
 */
export function pictureOverLimit(track: VideoTrackInfo | undefined, maxPixels: number): string | undefined {
  if (track?.width === undefined || track.height === undefined || track.width * track.height <= maxPixels) return undefined;
  return `${track.width}x${track.height}`;
}

/**
 * What ffmpeg's decoder gets as -max_pixels for --max-decode-pixels `maxPixels`. ffmpeg counts the picture
 * as it allocates it, a side padded to whole coding blocks or aligned for SIMD (a 160x90 H.264 picture counts
 * as 192x90 here), where the limit counts the picture the sequence header declares; so it gets room for up to
 * 64 more pixels each way on sides of up to 16,384 (ffmpeg's own bound), about 2.1 M pixels: a picture
 * within the limit is never refused for its padding, and one far over it still is.
 */
export function ffmpegMaxPixels(maxPixels: number): number {
  return maxPixels + CODING_BLOCK_PADDING;
}

const CODING_BLOCK_PADDING = 64 * (16_384 + 16_384) + 64 * 64;
