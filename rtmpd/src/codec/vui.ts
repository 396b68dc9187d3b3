import type { BitReader } from './bits.ts';

/**
 * The highest frame rate rtmpd believes a sequence header declares: the timing
 * fields are two free 32-bit numbers, and a broken or hostile encoder's ratio
 * must not reach the streams API or the metrics as a rate no camera sends.
 */
export const MAX_DECLARED_FPS = 1000;

/**
 * Skips the head that the VUI of H.264 (E.1.1) and of HEVC (E.2.1) share:
 * aspect ratio, overscan, video signal type and chroma sample location.
 */
export function skipVuiPictureInfo(r: BitReader): void {
  if (r.flag()) {
    // aspect_ratio_info_present_flag
    if (r.u(8) === 255) r.skip(32); // Extended_SAR: sar_width, sar_height
  }
  if (r.flag()) r.bit(); // overscan_info_present_flag → overscan_appropriate_flag
  if (r.flag()) {
    // video_signal_type_present_flag
    r.skip(4); // video_format, video_full_range_flag
    if (r.flag()) r.skip(24); // colour_description_present_flag
  }
  if (r.flag()) {
    // chroma_loc_info_present_flag
    r.ue();
    r.ue();
  }
}

/** `timeScale / ticksPerFrame`, or undefined when either is 0 or the rate is above {@link MAX_DECLARED_FPS}. */
export function declaredFps(timeScale: number, ticksPerFrame: number): number | undefined {
  if (timeScale === 0 || ticksPerFrame === 0) return undefined;
  const fps = timeScale / ticksPerFrame;
  return fps <= MAX_DECLARED_FPS ? fps : undefined;
}
