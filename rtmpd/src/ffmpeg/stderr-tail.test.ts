import { describe, expect, it } from 'vitest';
import { StderrTail } from './stderr-tail.ts';

describe('StderrTail', () => {
  it('gives the last lines joined by " | ", without the line the cut falls in', () => {
    const tail = new StderrTail();
    tail.push(Buffer.from('first line\nsec'));
    tail.push(Buffer.from('ond\n  third  \n'));
    expect(tail.text(100)).toBe('first line | second | third');
    expect(tail.text(13)).toBe('third'); // the cut falls in "second"
  });

  it('keeps about the last 4 KiB of an endless stderr, and its last line', () => {
    const tail = new StderrTail();
    for (let i = 0; i < 10_000; i++) tail.push(Buffer.from(`line ${String(i).padStart(5, '0')}\n`));
    const kept = tail.text(1 << 20).split(' | ');
    expect(kept.at(-1)).toBe('line 09999');
    // 11-byte lines: whole chunks are dropped while the rest still holds 4096 bytes.
    expect(kept.length).toBeGreaterThanOrEqual(Math.floor(4096 / 11) - 1);
    expect(kept.length).toBeLessThanOrEqual(Math.ceil(4096 / 11) + 1);
  });
});
