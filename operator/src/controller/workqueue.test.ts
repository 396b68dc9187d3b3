import { describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './workqueue.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('hands a key out once however often it was added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.shutDown();
  });

  it('never gives a key being processed to a second worker; re-adds it after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a'); // while processing
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await tick();
    expect(second).toBeUndefined();
    q.done(key!);
    await tick();
    expect(second).toBe('a');
    q.shutDown();
  });

  it('backs off exponentially per key and forgets on success', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
    expect([0, 1, 2, 3, 4].map((n) => q.backoff(n))).toEqual([10, 20, 40, 40, 40]);
    const started = Date.now();
    q.addRateLimited('a'); // 10 ms
    expect(q.length).toBe(0);
    expect(await q.get()).toBe('a');
    q.done('a');
    q.addRateLimited('a'); // 20 ms
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(Date.now() - started).toBeGreaterThanOrEqual(28);
    expect(q.retries('a')).toBe(2);
    expect(q.retries('b')).toBe(0);
    q.forget('a');
    expect(q.retries('a')).toBe(0);
    q.shutDown();
  });

  it('keeps the earlier of two delayed adds', async () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter('a', 5000);
      q.addAfter('a', 5);
      const got = q.get();
      await vi.advanceTimersByTimeAsync(5);
      expect(await Promise.race([got, Promise.resolve('still waiting')])).toBe('a');
      q.shutDown();
    } finally {
      vi.useRealTimers();
    }
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add('x');
    expect(await q.get()).toBeUndefined();
  });

  it('hands out no queued key once shut down, so a stopping operator does not work through a full queue', async () => {
    const q = new WorkQueue();
    for (const key of ['a', 'b', 'c']) q.add(key);
    expect(await q.get()).toBe('a');
    q.shutDown();
    expect(await q.get()).toBeUndefined();
    q.done('a');
    expect(await q.get()).toBeUndefined();
  });
});
