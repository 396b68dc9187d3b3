import { describe, expect, it, vi } from 'vitest';
import { BoundedPool, PoolBusyError } from './pool.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('BoundedPool', () => {
  it('runs at most `concurrency` tasks and starts queued ones as slots free up', async () => {
    const pool = new BoundedPool({ concurrency: 2, maxQueued: 10, maxWaitMs: 1000 });
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, i) =>
      pool.run(async () => {
        started.push(i);
        await gate.promise;
        return i;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect(pool.queued).toBe(1);
    gates[0]!.resolve();
    expect(await runs[0]).toBe(0);
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2]);
    expect(pool.active).toBe(0);
  });

  it('refuses work when the queue is full, and frees the slot of a failed task', async () => {
    const pool = new BoundedPool({ concurrency: 1, maxQueued: 1, maxWaitMs: 1000 });
    const gate = deferred();
    const first = pool.run(() => gate.promise);
    const second = pool.run(() => Promise.reject(new Error('decode failed')));
    await expect(pool.run(() => Promise.resolve())).rejects.toBeInstanceOf(PoolBusyError);
    gate.resolve();
    await first;
    await expect(second).rejects.toThrow('decode failed');
    expect(pool.active).toBe(0);
    await expect(pool.run(() => Promise.resolve('ok'))).resolves.toBe('ok');
  });

  it('refuses a queued task that waited past the bound', async () => {
    const pool = new BoundedPool({ concurrency: 1, maxQueued: 5, maxWaitMs: 20 });
    const gate = deferred();
    const first = pool.run(() => gate.promise);
    await expect(pool.run(() => Promise.resolve())).rejects.toThrow(/no free slot/);
    expect(pool.queued).toBe(0);
    gate.resolve();
    await first;
    expect(pool.active).toBe(0);
  });

  it('forgets the wait bound of a task once it started: a task queued after it is not dropped when that bound passes', async () => {
    vi.useFakeTimers();
    try {
      const pool = new BoundedPool({ concurrency: 1, maxQueued: 1, maxWaitMs: 100 });
      const [first, second] = [deferred(), deferred()];
      const running = pool.run(() => first.promise);
      const started = pool.run(() => second.promise);
      await vi.advanceTimersByTimeAsync(10);
      first.resolve();
      await running;
      await vi.advanceTimersByTimeAsync(50);
      const queued = pool.run(() => Promise.resolve('queued'));
      await vi.advanceTimersByTimeAsync(50); // past the bound of the task that started at 10 ms
      second.resolve();
      await started;
      await vi.advanceTimersByTimeAsync(100);
      await expect(queued).resolves.toBe('queued');
    } finally {
      vi.useRealTimers();
    }
  });
});
