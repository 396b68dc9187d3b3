import { describe, expect, it } from 'vitest';
import { MAX_REVOCATIONS, Revocations } from './revocations.ts';

describe('Revocations', () => {
  it('holds a ban until its end, not at it, and a revocation without an end until it is lifted', () => {
    const revoked = new Revocations();
    revoked.add('live', 'banned', 60, 1000);
    revoked.add('live', 'revoked', undefined, 1000);
    expect(revoked.has('live', 'banned', 60_999)).toBe(true);
    expect(revoked.has('live', 'banned', 61_000)).toBe(false);
    expect(revoked.has('live', 'revoked', Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(revoked.remove('live', 'revoked')).toBe(true);
    expect(revoked.has('live', 'revoked')).toBe(false);
    expect(revoked.has('live', 'other')).toBe(false);
  });

  it('refuses a new key beyond MAX_REVOCATIONS, but renews one it holds and takes new ones once bans end', () => {
    const revoked = new Revocations();
    for (let i = 0; i < MAX_REVOCATIONS; i++) revoked.add('live', `k${i}`, i === 0 ? 10 : undefined, 0);
    expect(revoked.add('live', 'one-more', undefined, 0)).toBeUndefined();
    expect(revoked.add('live', 'k1', 60, 0)).toEqual({ app: 'live', key: 'k1', until: 60_000 });
    // k0's ban has ended: its room is free again.
    expect(revoked.add('live', 'one-more', undefined, 10_000)).toEqual({ app: 'live', key: 'one-more', until: undefined });
    expect(revoked.list(10_000)).toHaveLength(MAX_REVOCATIONS);
  });
});
