import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from './leader.ts';

const log = pino({ level: 'silent' });

describe('LeaderElector', () => {
  it('stops at once when stopped while an attempt to acquire is in flight, not after the retry period', async () => {
    // A stand-in for the API server: the race needs a Lease read held open
    // until after stop(), which a real API server answers too fast to hit.
    let answer!: (lease: V1Lease) => void;
    const api = {
      readNamespacedLease: () => new Promise<V1Lease>((resolve) => (answer = resolve)),
    } as unknown as CoordinationV1Api;
    const elector = new LeaderElector({
      api,
      namespace: 'ns',
      name: 'lease',
      identity: 'me',
      retryPeriodMs: 60_000,
      log,
      onStartedLeading: () => undefined,
      onStoppedLeading: () => undefined,
    });
    elector.start();
    await new Promise((r) => setTimeout(r, 5));
    const stopping = elector.stop();
    answer({ spec: { holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new Date() } });
    const late = new Promise((r) => setTimeout(() => r('still stopping after 1 s'), 1_000));
    expect(await Promise.race([stopping.then(() => 'stopped'), late])).toBe('stopped');
    expect(elector.leading).toBe(false);
  });
});
