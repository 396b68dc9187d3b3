import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEntries, SecretPathError } from './mounted.ts';

describe('readEntries', () => {
  it('reads a secret file of 1 MiB and refuses one a byte larger, which a mount could make the server hold', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-secret-'));
    await writeFile(join(dir, 'fits'), Buffer.alloc(1 << 20, 'k'));
    await writeFile(join(dir, 'over'), Buffer.alloc((1 << 20) + 1, 'k'));
    expect((await readEntries(join(dir, 'fits'))).get('')).toHaveLength(1 << 20);
    await expect(readEntries(join(dir, 'over'))).rejects.toThrow(SecretPathError);
    await expect(readEntries(dir)).rejects.toThrow(/over is larger than 1048576 bytes/);
  });

  it('reads a directory of 10000 files, hidden entries not counted, and refuses one of 10001', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-secret-'));
    try {
      await mkdir(join(dir, '..data'));
      for (let i = 0; i < 10_000; i += 500)
        await Promise.all(Array.from({ length: 500 }, (_, j) => writeFile(join(dir, `key-${i + j}`), 'k')));
      expect((await readEntries(dir)).size).toBe(10_000);
      await writeFile(join(dir, 'one-more'), 'k');
      await expect(readEntries(dir)).rejects.toThrow(/holds more than 10000 files/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
