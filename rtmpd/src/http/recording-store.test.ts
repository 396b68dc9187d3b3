import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouterContext } from '@koa/router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { recordingFileName } from '../storage/catalog.ts';
import { RecordingStore, type FilesBeingWritten } from './recording-store.ts';

/** The walks of the storage directory the store starts (listRecordings, counted), each held until `gate` opens. */
const walks = vi.hoisted(() => ({ parts: [] as unknown[], gate: Promise.resolve() }));
vi.mock('../storage/catalog.ts', async (importOriginal) => {
  const catalog = await importOriginal<typeof import('../storage/catalog.ts')>();
  return {
    ...catalog,
    listRecordings: async (...args: Parameters<typeof catalog.listRecordings>) => {
      walks.parts.push(args[1]);
      await walks.gate;
      return catalog.listRecordings(...args);
    },
  };
});

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

/** The signal of a client that does not leave. */
const stays = new AbortController().signal;

/**
 * A store over one file of live/cam whose segment has ended, and which the recorder finishes when `finished`
 * settles; `asked` settles when a DELETE asks the recorder about it.
 */
async function finishingFile(finished: Promise<void>): Promise<{ store: RecordingStore; path: string; id: string; asked: Promise<void> }> {
  const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-recordings-'));
  const { path, id } = await recordingFile(storageDir, 4000, 0);
  let done = false;
  void finished.then(() => (done = true));
  let askedAbout!: () => void;
  const asked = new Promise<void>((resolve) => (askedAbout = resolve));
  const store = new RecordingStore(storageDir, {
    filesInUse: () => new Set(done ? [] : [path]),
    finishing: (about) => {
      if (about !== path || done) return undefined;
      askedAbout();
      return finished;
    },
  });
  return { store, path, id, asked };
}

describe('RecordingStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

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
    const removal = store.remove(ctx, ended.id, stays).then(() => (answered = true));
    // The DELETE found the file and waits while the recorder finishes it: the file stays, and no answer comes.
    await asked;
    expect({ answered, onDisk: await exists(ended.path) }).toEqual({ answered: false, onDisk: true });
    closed = true;
    closeEnded();
    await removal;
    expect({ status: ctx.status, onDisk: await exists(ended.path) }).toEqual({ status: 204, onDisk: false });
    await expect(store.remove({ status: 0 } as RouterContext, open.id, stays)).rejects.toMatchObject({
      status: 409,
      code: 'recording_in_progress',
    });
    expect(await exists(open.path)).toBe(true);
  });

  it('answers a DELETE of a file the recorder takes more than 5 s to finish with a 409 to retry, and leaves the file', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { store, path, id, asked } = await finishingFile(new Promise<void>(() => {}));
    const removal = store.remove({ status: 0 } as RouterContext, id, stays);
    const refused = expect(removal).rejects.toMatchObject({
      status: 409,
      code: 'recording_in_progress',
      message: expect.stringContaining('retry'),
      headers: { 'Retry-After': '5' },
    });
    await asked;
    vi.advanceTimersByTime(4999);
    await Promise.resolve();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1);
    await refused;
    expect(await exists(path)).toBe(true);
  });

  it('deletes nothing and keeps no timer when the client of a DELETE waiting for the recorder leaves', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let finish!: () => void;
    const { store, path, id, asked } = await finishingFile(new Promise<void>((resolve) => (finish = resolve)));
    const client = new AbortController();
    const ctx = { status: 0 } as RouterContext;
    const removal = store.remove(ctx, id, client.signal);
    await asked;
    expect(vi.getTimerCount()).toBe(1);
    client.abort();
    await removal;
    expect({ timers: vi.getTimerCount(), status: ctx.status }).toEqual({ timers: 0, status: 0 });
    // The file, finished after the client left, stays.
    finish();
    await Promise.resolve();
    expect(await exists(path)).toBe(true);
  });

  it('walks once for the lists asked while a walk runs, from after they were asked, and one stream by its own directory', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-recordings-'));
    const old = await recordingFile(storageDir, 240_000, 120_000);
    const store = new RecordingStore(storageDir, { filesInUse: () => new Set(), finishing: () => undefined });
    let open!: () => void;
    walks.gate = new Promise((resolve) => (open = resolve));
    walks.parts = [];
    const first = store.select({});
    await vi.waitFor(() => expect(walks.parts).toHaveLength(1));
    // While the first walk runs, a file is deleted and another written: the lists asked now see both.
    await rm(old.path);
    const added = await recordingFile(storageDir, 120_000, 60_000);
    const lists = Array.from({ length: 10 }, () => store.select({}));
    open();
    await first;
    for (const list of await Promise.all(lists)) expect(list.map((f) => f.id)).toEqual([added.id]);
    expect(walks.parts).toEqual([{}, {}]);
    // A stream's list reads its directory only.
    expect((await store.select({ stream_id: 'rtmp/live/cam' })).map((f) => f.id)).toEqual([added.id]);
    expect(walks.parts.at(-1)).toEqual({ app: 'live', key: 'cam' });
  });
});
