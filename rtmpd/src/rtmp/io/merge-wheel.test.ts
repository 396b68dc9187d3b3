import { afterEach, describe, expect, it, vi } from 'vitest';
import { MergeWheel, type MergingWriter } from './merge-wheel.ts';

/** Writers that record when the wheel flushed them. */
function writers(...names: string[]): { flushed: [string, number][]; w: Record<string, MergingWriter> } {
  const flushed: [string, number][] = [];
  const w: Record<string, MergingWriter> = {};
  for (const name of names) w[name] = { mergeSlot: -1, flushMerged: (now) => void flushed.push([name, now]) };
  return { flushed, w };
}

describe('MergeWheel', () => {
  afterEach(() => void vi.useRealTimers());

  it('flushes each writer at its own deadline, not all when the first is due', () => {
    const wheel = new MergeWheel(40, () => {});
    const { flushed, w } = writers('a', 'b', 'c');
    wheel.run(0);
    expect(wheel.add(w.a!, 10.5, 0)).toBe(true);
    expect(wheel.add(w.b!, 12, 0)).toBe(true);
    expect(wheel.add(w.c!, 40, 0)).toBe(true);
    expect(wheel.waiting).toBe(3);
    wheel.run(9.9);
    expect(flushed).toEqual([]);
    // A slot is a millisecond: a deadline is met up to 1 ms early, never late.
    wheel.run(10);
    expect(flushed).toEqual([['a', 10]]);
    wheel.run(11.9);
    wheel.run(12);
    wheel.run(39);
    expect(flushed).toEqual([
      ['a', 10],
      ['b', 12],
    ]);
    wheel.run(40);
    expect(flushed.map(([name]) => name)).toEqual(['a', 'b', 'c']);
    expect(wheel.waiting).toBe(0);
  });

  it('flushes every overdue writer after a pause longer than its turn', () => {
    const wheel = new MergeWheel(40, () => {});
    const { flushed, w } = writers('a', 'b');
    wheel.run(1000);
    wheel.add(w.a!, 1035, 1000);
    wheel.add(w.b!, 1003, 1000);
    // The event loop stalled for 200 ms: the slots have come round more than once.
    wheel.run(1200);
    expect(flushed.map(([name]) => name).sort()).toEqual(['a', 'b']);
    expect(wheel.waiting).toBe(0);
    expect(w.a!.mergeSlot).toBe(-1);
  });

  it('skips a writer that left early, and refuses a deadline whose slot has run', () => {
    const wheel = new MergeWheel(30, () => {});
    const { flushed, w } = writers('a');
    wheel.run(0);
    wheel.add(w.a!, 5, 0);
    wheel.cancel(w.a!);
    expect(wheel.waiting).toBe(0);
    wheel.run(10);
    expect(flushed).toEqual([]);
    // Back in a later slot: flushed once, then.
    expect(wheel.add(w.a!, 20.5, 10)).toBe(true);
    // Already waiting: a second add leaves its slot as it is.
    expect(wheel.add(w.a!, 35, 10)).toBe(true);
    wheel.run(20);
    wheel.run(40);
    expect(flushed).toEqual([['a', 20]]);
    expect(wheel.add(w.a!, 40.5, 40.2)).toBe(false);
    expect(wheel.waiting).toBe(0);
  });

  it('uses a slot again a turn later for new writers only', () => {
    // A span of 4 ms: 6 slots, so slots 2, 8 and 14 share a list.
    const wheel = new MergeWheel(4, () => {});
    const { flushed, w } = writers('a', 'b', 'c');
    wheel.run(0);
    wheel.add(w.a!, 2, 0);
    wheel.add(w.b!, 2.5, 0);
    wheel.run(2);
    wheel.add(w.c!, 8, 5);
    wheel.run(8);
    wheel.run(14);
    expect(flushed).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 8],
    ]);
    expect(wheel.waiting).toBe(0);
  });

  it('sets one timer for the earliest deadline while no read runs the wheel', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const afterTimer = vi.fn();
    const wheel = new MergeWheel(40, afterTimer);
    const { flushed, w } = writers('a', 'b');
    const start = Math.ceil(performance.now());
    vi.advanceTimersByTime(start - performance.now());
    wheel.run(start);
    wheel.add(w.a!, start + 30, start);
    wheel.add(w.b!, start + 20, start);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(19);
    expect(flushed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(flushed).toEqual([['b', start + 20]]);
    expect(afterTimer).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10);
    expect(flushed).toEqual([
      ['b', start + 20],
      ['a', start + 30],
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
