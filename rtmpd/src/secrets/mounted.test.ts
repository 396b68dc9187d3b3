import { mkdtemp, writeFile } from 'node:fs/promises';
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
});
