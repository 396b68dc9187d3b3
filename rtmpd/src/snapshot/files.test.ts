import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pruneTimestamped, timestampedName, writeFileAtomic } from './files.ts';

describe('snapshot files', () => {
  it('writes atomically, creating the directory and leaving no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-files-'));
    const path = join(dir, 'live', 'cam', 'latest.jpg');
    await writeFileAtomic(path, Buffer.from('one'));
    await writeFileAtomic(path, Buffer.from('two'));
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(join(dir, 'live', 'cam'))).toEqual(['latest.jpg']);
  });

  it('keeps the newest timestamped snapshots and never touches latest.*', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-prune-'));
    const names = [0, 1, 2, 3].map((i) => timestampedName(new Date(Date.UTC(2026, 1, 19, 7, 30, i))));
    for (const name of [...names, 'latest.jpg', 'latest.h264']) await writeFile(join(dir, name), '');
    expect(await pruneTimestamped(dir, 2)).toBe(2);
    expect((await readdir(dir)).sort()).toEqual([...names.slice(2), 'latest.h264', 'latest.jpg'].sort());
  });

  it('leaves no temp file when the rename fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-files-'));
    // a non-empty directory where the snapshot should go: the rename cannot replace it
    await mkdir(join(dir, 'latest.jpg', 'inside'), { recursive: true });
    await expect(writeFileAtomic(join(dir, 'latest.jpg'), Buffer.from('one'))).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['latest.jpg']);
  });

  it('deletes nothing while there are fewer snapshots than it keeps', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-prune-'));
    const names = [0, 1, 2, 3].map((i) => timestampedName(new Date(Date.UTC(2026, 1, 19, 7, 30, i))));
    for (const name of names) await writeFile(join(dir, name), '');
    expect(await pruneTimestamped(dir, 5)).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(names);
  });
});
