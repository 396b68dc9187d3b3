import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inOneVersion, readEntries, SecretPathError } from './mounted.ts';

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

describe('inOneVersion', () => {
  it('reads files in one directory through the version `..data` points to; files apart, or without `..data`, where they are', async () => {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'rtmpd-secret-')));
    try {
      const files = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
      expect(await inOneVersion(files)).toEqual(files);
      await mkdir(join(dir, '..1'));
      await symlink('..1', join(dir, '..data'));
      expect(await inOneVersion(files)).toEqual([join(dir, '..1', 'tls.crt'), join(dir, '..1', 'tls.key')]);
      const apart = [join(dir, 'tls.crt'), join(tmpdir(), 'tls.key')];
      expect(await inOneVersion(apart)).toEqual(apart);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
