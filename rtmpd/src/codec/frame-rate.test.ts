import { describe, expect, it } from 'vitest';
import { declaredFps, MAX_DECLARED_FPS } from './frame-rate.ts';

describe('declaredFps', () => {
  it('is time_scale over the ticks of a frame', () => {
    expect(declaredFps(30000, 1001)).toBeCloseTo(29.97, 2);
    expect(declaredFps(50, 2)).toBe(25);
  });

  it('is no rate for a zero field or a rate over MAX_DECLARED_FPS', () => {
    expect(declaredFps(0, 1)).toBeUndefined();
    expect(declaredFps(25, 0)).toBeUndefined();
    expect(declaredFps(MAX_DECLARED_FPS, 1)).toBe(MAX_DECLARED_FPS);
    expect(declaredFps(MAX_DECLARED_FPS + 1, 1)).toBeUndefined();
    expect(declaredFps(0xffffffff, 1)).toBeUndefined();
  });
});
