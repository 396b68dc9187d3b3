import type { BitReader } from './bits.ts';

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
