import { describe, expect, it } from 'vitest';
import { sameToken } from './routes.ts';

describe('the fleet token', () => {
  it('matches only the same token, whatever the lengths', () => {
    expect(sameToken('Bearer abc', 'Bearer abc')).toBe(true);
    expect(sameToken('Bearer abd', 'Bearer abc')).toBe(false);
    expect(sameToken('', 'Bearer abc')).toBe(false);
    expect(sameToken('Bearer abc'.repeat(100), 'Bearer abc')).toBe(false);
  });
});
