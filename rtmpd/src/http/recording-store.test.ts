import { mkdir, mkdtemp, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouterContext } from '@koa/router';
import { describe, expect, it } from 'vitest';
import { recordingFileName } from '../storage/catalog.ts';
import { RecordingStore, type FilesBeingWritten } from './recording-store.ts';

/** A recording file of live/cam that started `agoMs` ago and was last written `writtenAgoMs` ago; its path and id. */
async function recordingFile(storageDir: string, agoMs: number, writtenAgoMs: number): Promise<{ path: string; id: string }> {
  const name = recordingFileName(new Date(Date.now() - agoMs), 'fmp4');
  await mkdir(join(storageDir, 'live', 'cam'), { recursive: true });
  const path = join(storageDir, 'live', 'cam', name);
  await writeFile(path, Buffer.alloc(1024));
  const written = new Date(Date.now() - writtenAgoMs);
  await utimes(path, written, written);
  return { path, id: `live/cam/${name}` };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('RecordingStore', () => {
  it('lists the file being written for any time range up to now, though its last write (a fragment) was earlier', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-recordings-'));
    const { path, id } = await recordingFile(storageDir, 120_000, 60_000);
    const writing = new Set([path]);
    const store = new RecordingStore(storageDir, { filesInUse: () => writing, finishing: () => undefined });
    const lastHalfMinute = { start: Date.now() - 30_000 };
    const [listed] = await store.views(await store.select(lastHalfMinute));
    expect(listed).toMatchObject({ id, recording: true });
    // Once written, it ends at its last write.
    writing.clear();
    expect(await store.select(lastHalfMinute)).toEqual([]);
  });

  it('asks the recorder once per list which files it writes, for the time range and the views', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-recordings-'));
    const done = await recordingFile(storageDir, 240_000, 120_000);
    const open = await recordingFile(storageDir, 120_000, 0);
    let asked = 0;
    const store = new RecordingStore(storageDir, {
      filesInUse: () => (asked++, new Set([open.path])),
      finishing: () => undefined,
    });
    const views = await store.views(await store.select({}));
    expect(views.map((v) => [v.id, v.recording])).toEqual([
      [done.id, false],
      [open.id, true],
    ]);
    expect(asked).toBe(1);
  });

  it('deletes a file whose segment has just ended once the recorder has closed it, and refuses the open one', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-recordings-'));
    const ended = await recordingFile(storageDir, 4000, 0);
    const open = await recordingFile(storageDir, 2000, 0);
    let closed = false;
    let closeEnded!: () => void;
    const endedClosed = new Promise<void>((resolve) => (closeEnded = resolve));
    let askedAboutEnded!: () => void;
    const asked = new Promise<void>((resolve) => (askedAboutEnded = resolve));
    const writing: FilesBeingWritten = {
      filesInUse: () => new Set(closed ? [open.path] : [ended.path, open.path]),
      finishing: (path) => {
        if (path !== ended.path || closed) return undefined;
        askedAboutEnded();
        return endedClosed;
      },
    };
    const store = new RecordingStore(storageDir, writing);
    const ctx = { status: 0 } as RouterContext;
    let answered = false;
    const removal = store.remove(ctx, ended.id).then(() => (answered = true));
    // The DELETE found the file and waits while the recorder finishes it: the file stays, and no answer comes.
    await asked;
    expect({ answered, onDisk: await exists(ended.path) }).toEqual({ answered: false, onDisk: true });
    closed = true;
    closeEnded();
    await removal;
    expect({ status: ctx.status, onDisk: await exists(ended.path) }).toEqual({ status: 204, onDisk: false });
    await expect(store.remove({ status: 0 } as RouterContext, open.id)).rejects.toMatchObject({
      status: 409,
      code: 'recording_in_progress',
    });
    expect(await exists(open.path)).toBe(true);
  });
});
