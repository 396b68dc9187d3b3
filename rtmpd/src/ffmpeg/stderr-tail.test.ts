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

describe('StderrTail with large chunks', () => {
  it('drops a chunk once the chunks after it hold 4 KiB, not sooner, however large they are', () => {
    const lines = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => `${prefix} ${String(i).padStart(5, '0')}\n`).join('');
    const tail = new StderrTail();
    tail.push(Buffer.from('oldest\n'));
    const large = lines('large', 300); // 12-byte lines: 3,600 bytes in one write
    tail.push(Buffer.from(large));
    tail.push(Buffer.from('last\n'));
    // 'oldest' is dropped only if what follows it still holds 4,096 bytes: 3,605 do not.
    expect(tail.text(1 << 20).split(' | ')).toEqual(['oldest', ...large.trim().split('\n'), 'last']);
    // Exactly 4,096 more bytes: the chunks before them are dropped.
    tail.push(Buffer.from('x'.repeat(4095) + '\n'));
    expect(tail.text(1 << 20)).toBe('x'.repeat(4095));
  });
});
