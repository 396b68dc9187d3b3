import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FaultLog, type FaultLevel } from './fault-log.ts';

describe('FaultLog', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('writes 10 lines of a message per 10 s, and says how many it dropped when the window ends, though no line follows', () => {
    const lines: { level: FaultLevel; msg?: string; obj: object }[] = [];
    const at = (level: FaultLevel) => (obj: object, msg?: string) => void lines.push({ level, msg, obj });
    const faults = new FaultLog({ info: at('info'), warn: at('warn'), error: at('error') });
    const written = (msg: string) => lines.filter((line) => line.msg === msg).length;
    const dropped = () => lines.filter((line) => line.msg === 'fault log lines dropped').map(({ level, obj }) => ({ level, ...obj }));

    for (let i = 0; i < 1000; i++) faults.log('warn', { i }, 'rtmp protocol error, closing');
    expect(written('rtmp protocol error, closing')).toBe(10);
    expect(lines[9]).toEqual({ level: 'warn', msg: 'rtmp protocol error, closing', obj: { i: 9 } });
    // Each message has its own budget.
    faults.log('info', {}, 'rtmp handshake timeout, closing');
    expect(written('rtmp handshake timeout, closing')).toBe(1);
    vi.advanceTimersByTime(9_999);
    faults.log('warn', {}, 'rtmp protocol error, closing');
    expect(dropped()).toEqual([]);

    // The flood stops; its window ends: the count is said, once.
    vi.advanceTimersByTime(1);
    expect(dropped()).toEqual([{ level: 'warn', line: 'rtmp protocol error, closing', dropped: 991 }]);
    vi.advanceTimersByTime(60_000);
    expect(dropped()).toHaveLength(1);

    // A new window writes 10 lines again, and says only its own drops.
    for (let i = 0; i < 13; i++) faults.log('warn', {}, 'rtmp protocol error, closing');
    expect(written('rtmp protocol error, closing')).toBe(20);
    vi.advanceTimersByTime(10_000);
    expect(dropped()).toEqual([
      { level: 'warn', line: 'rtmp protocol error, closing', dropped: 991 },
      { level: 'warn', line: 'rtmp protocol error, closing', dropped: 3 },
    ]);
  });

  it('starts a new window exactly 10 s after the last began', () => {
    const written: number[] = [];
    const line = () => void written.push(performance.now());
    const faults = new FaultLog({ info: line, warn: line, error: line });
    for (let i = 0; i < 11; i++) faults.log('warn', {}, 'rtmp protocol error, closing');
    vi.advanceTimersByTime(10_000);
    written.length = 0;
    faults.log('warn', {}, 'rtmp protocol error, closing');
    expect(written).toHaveLength(1);
  });
});
