import { describe, expect, it } from 'vitest';
import { judge, type HolderState } from './claims.ts';

const healthy: HolderState = { alive: true, answers: true, silentMs: 1000, durationMs: 10_000, draining: false };

describe('judging a claim another pod holds', () => {
  it('refuses while its holder renews and answers', () => {
    expect(judge(healthy, 'edge-1')).toEqual({ kind: 'held', pod: 'edge-1' });
  });

  it('takes it over only once the holder’s Lease has expired', () => {
    expect(judge({ ...healthy, alive: false, answers: false }, 'edge-1')).toEqual({ kind: 'stale' });
  });

  it('waits for expiry when the holder stops answering (a killed process) instead of refusing', () => {
    expect(judge({ ...healthy, answers: false, silentMs: 4000 }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 6000 });
  });

  it('waits for expiry when the holder missed two renewals, even if its port answers', () => {
    expect(judge({ ...healthy, silentMs: 7000 }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 3000 });
  });

  it('waits for a draining holder to let go, with no known end', () => {
    expect(judge({ ...healthy, draining: true }, 'edge-1')).toEqual({ kind: 'wait', pod: 'edge-1', ms: 0 });
  });
});
