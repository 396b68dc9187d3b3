import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DiskBacklog, SegmentFile } from './segment-file.ts';

it('refuses appends once the file has failed, and counts as queued only what it took', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rtmpd-segment-'));
  // A file where the stream's directory should be: the file cannot be created.
  await writeFile(join(dir, 'live'), 'not a directory');
  const queued: number[] = [];
  const errors: string[] = [];
  const backlog = new DiskBacklog();
  const file = new SegmentFile(join(dir, 'live', 'cam', 'a.flv'), backlog, {
    onQueued: (bytes) => queued.push(bytes),
    onError: (err) => errors.push(err.code!),
  });
  file.header(Buffer.alloc(13));
  expect(file.append(Buffer.alloc(100))).toBe(true);
  await file.closed;
  expect(errors).toEqual(['ENOTDIR']);
  expect(file.append(Buffer.alloc(100))).toBe(false);
  expect(queued).toEqual([13, 100]);
  expect(backlog.bytes).toBe(0);
});

it('admits appends while a stream has up to 32 MiB queued in all, that limit included', () => {
  const backlog = new DiskBacklog();
  backlog.bytes = 1;
  expect(backlog.admits(32 * 1024 * 1024 - 1)).toBe(true);
  expect(backlog.admits(32 * 1024 * 1024)).toBe(false);
});
