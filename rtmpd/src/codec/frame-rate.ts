/**
 * The highest frame rate rtmpd believes a sequence header declares: the timing
 * fields are free 32-bit numbers (H.264 and HEVC VUI, AV1 timing_info), and a
 * broken or hostile encoder's ratio must not reach the streams API or the
 * metrics as a rate no camera sends.
 */
export const MAX_DECLARED_FPS = 1000;

/** `timeScale / ticksPerFrame`, or undefined when either is 0 or the rate is above {@link MAX_DECLARED_FPS}. */
export function declaredFps(timeScale: number, ticksPerFrame: number): number | undefined {
  if (timeScale === 0 || ticksPerFrame === 0) return undefined;
  const fps = timeScale / ticksPerFrame;
  return fps <= MAX_DECLARED_FPS ? fps : undefined;
}
