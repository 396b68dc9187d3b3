import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { boundedWait, sleep } from './bounded-wait.ts';

const OUTCOMES = { timedOut: 'late', aborted: 'left' } as const;

/** An event source that counts the settles registered on it. */
function announcer() {
  const listeners = new Set<(value: string) => void>();
  return {
    listeners,
    listen: (settle: (value: string) => void) => {
      listeners.add(settle);
      return () => listeners.delete(settle);
    },
    announce: (value: string) => {
      for (const settle of listeners) settle(value);
    },
  };
}

/** Timers, abort listeners and registrations still held once the wait answered. */
function leftBehind(signal: AbortSignal, listeners: Set<unknown>) {
  return { timers: vi.getTimerCount(), abortListeners: getEventListeners(signal, 'abort').length, registrations: listeners.size };
}
const NOTHING = { timers: 0, abortListeners: 0, registrations: 0 };

describe('boundedWait', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('times out at once, without a warning, when the deadline it was given has passed', async () => {
    vi.useRealTimers();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      expect(await boundedWait(-1000, undefined, OUTCOMES)).toBe('late');
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).toEqual([]);
  });

  it('answers what the event settles with, and leaves nothing behind', async () => {
    const { signal } = new AbortController();
    const events = announcer();
    const answer = boundedWait(1000, signal, OUTCOMES, events.listen);
    expect(leftBehind(signal, events.listeners)).toEqual({ timers: 1, abortListeners: 1, registrations: 1 });
    events.announce('published');
    expect(await answer).toBe('published');
    expect(leftBehind(signal, events.listeners)).toEqual(NOTHING);
  });

  it('answers timedOut after ms, and leaves nothing behind', async () => {
    const { signal } = new AbortController();
    const events = announcer();
    const answer = boundedWait(1000, signal, OUTCOMES, events.listen);
    await vi.advanceTimersByTimeAsync(999);
    expect(leftBehind(signal, events.listeners)).toEqual({ timers: 1, abortListeners: 1, registrations: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(await answer).toBe('late');
    expect(leftBehind(signal, events.listeners)).toEqual(NOTHING);
  });

  it('answers aborted when the signal aborts, and leaves nothing behind', async () => {
    const controller = new AbortController();
    const events = announcer();
    const answer = boundedWait(1000, controller.signal, OUTCOMES, events.listen);
    controller.abort();
    expect(await answer).toBe('left');
    expect(leftBehind(controller.signal, events.listeners)).toEqual(NOTHING);
  });

  it('answers aborted at once for a signal that had aborted, without listening', async () => {
    const signal = AbortSignal.abort();
    const events = announcer();
    expect(await boundedWait(1000, signal, OUTCOMES, events.listen)).toBe('left');
    expect(leftBehind(signal, events.listeners)).toEqual(NOTHING);
  });

  it('keeps the first outcome, and takes the registration back once: a later event, timeout or abort changes nothing', async () => {
    const controller = new AbortController();
    let announce = (_value: string): void => {};
    let undone = 0;
    const answer = boundedWait<string>(1000, controller.signal, OUTCOMES, (settle) => {
      announce = settle;
      return () => undone++;
    });
    controller.abort();
    announce('published');
    await vi.advanceTimersByTimeAsync(1000);
    expect(await answer).toBe('left');
    expect(undone).toBe(1);
  });

  it('takes back a registration whose listen settled before it returned', async () => {
    const { signal } = new AbortController();
    const events = announcer();
    const answer = boundedWait<string>(1000, signal, OUTCOMES, (settle) => {
      const undo = events.listen(settle);
      settle('already');
      return undo;
    });
    expect(await answer).toBe('already');
    expect(leftBehind(signal, events.listeners)).toEqual(NOTHING);
  });

  it('waits without a signal', async () => {
    const events = announcer();
    const answer = boundedWait(1000, undefined, OUTCOMES, events.listen);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await answer).toBe('late');
    expect(vi.getTimerCount()).toBe(0);
    expect(events.listeners.size).toBe(0);
  });
});

describe('sleep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves after ms, its timer and listener gone', async () => {
    const { signal } = new AbortController();
    let woke = false;
    const slept = sleep(500, signal).then(() => (woke = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await slept;
    expect(leftBehind(signal, new Set())).toEqual(NOTHING);
  });

  it('resolves at once when the signal aborts, or had', async () => {
    const controller = new AbortController();
    const slept = sleep(500, controller.signal);
    controller.abort();
    await slept;
    expect(leftBehind(controller.signal, new Set())).toEqual(NOTHING);
    await sleep(500, controller.signal);
    expect(vi.getTimerCount()).toBe(0);
  });
});
