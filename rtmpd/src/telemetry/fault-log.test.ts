import { describe, expect, it } from 'vitest';
import { FaultLog } from './fault-log.ts';

describe('FaultLog', () => {
  it('lets 10 lines of a message through per 10 s, and the next one says how many were dropped before it', () => {
    let now = 0;
    const faults = new FaultLog(() => now);
    const admitted = (msg: string, times: number) => Array.from({ length: times }, () => faults.admit(msg)).filter((a) => a !== undefined);
    expect(admitted('rtmp protocol error, closing', 1000)).toEqual(Array(10).fill({}));
    // Each message has its own budget.
    expect(admitted('rtmp handshake timeout, closing', 1)).toEqual([{}]);
    now = 9_999;
    expect(faults.admit('rtmp protocol error, closing')).toBeUndefined();
    now = 10_000;
    expect(admitted('rtmp protocol error, closing', 3)).toEqual([{ droppedBefore: 991 }, {}, {}]);
  });
});
