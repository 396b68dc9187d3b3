import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouterContext } from '@koa/router';
import { pino } from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { lavfiClip, readFlvFile } from '../../test/support/flv-fixture.ts';
import { configSchema, recordingRule } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import { RecordingStore } from '../http/recording-store.ts';
import { listRecordings, recordingFileName } from './catalog.ts';
import { Recorder } from './recorder.ts';
import { Retention, type RetentionConfig } from './retention.ts';

/** The walks of the whole storage directory (listRecordings), counted. */
const walks = vi.hoisted(() => ({ count: 0 }));
vi.mock('./catalog.ts', async (importOriginal) => {
  const catalog = await importOriginal<typeof import('./catalog.ts')>();
  return {
    ...catalog,
    listRecordings: (...args: Parameters<typeof catalog.listRecordings>) => {
      walks.count++;
      return catalog.listRecordings(...args);
    },
  };
});

beforeEach(() => {
  walks.count = 0;
});

const logger = pino({ level: 'silent' });
const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-28T12:00:00.000Z');

/** Writes `<app>/<key>/<start>.mp4` of `kib` KiB, last written `ageHours` before NOW. */
async function recording(storageDir: string, app: string, key: string, ageHours: number, kib: number): Promise<string> {
  const dir = join(storageDir, app, key);
  await mkdir(dir, { recursive: true });
  const path = join(dir, recordingFileName(new Date(NOW - ageHours * HOUR - 60_000), 'fmp4'));
  await writeFile(path, Buffer.alloc(kib * 1024));
  const modified = new Date(NOW - ageHours * HOUR);
  await utimes(path, modified, modified);
  return path;
}

async function remaining(storageDir: string, app: string, key: string): Promise<number> {
  return (await readdir(join(storageDir, app, key))).length;
}

/** The paths of the recording files under `storageDir`, oldest first. */
async function onDisk(storageDir: string): Promise<string[]> {
  return (await listRecordings(storageDir)).map((f) => f.path);
}

function retention(storageDir: string, config: Partial<RetentionConfig>, inUse: string[] = []): Retention {
  const r = new Retention({
    storageDir,
    config: { recordingMaxAgeHours: 0, recordingMaxBytes: 0, recordingRules: [], ...config },
    writing: () => new Map(inUse.map((path) => [path, 1024])),
    logger,
  });
  void r.close();
  return r;
}

describe('Retention', () => {
  it('deletes by age, oldest first, and never the file being written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    const writing = await recording(dir, 'live', 'cam', 30, 1); // old, but still open
    await recording(dir, 'live', 'cam', 25, 1);
    await recording(dir, 'live', 'cam', 23, 1);
    await recording(dir, 'live', 'cam', 1, 1);
    const deleted = await retention(dir, { recordingMaxAgeHours: 24 }, [writing]).sweep(NOW);
    expect(deleted.map((d) => d.reason)).toEqual(['age']);
    expect(deleted[0]!.file.start.getTime()).toBe(NOW - 25 * HOUR - 60_000);
    expect(await remaining(dir, 'live', 'cam')).toBe(3);
  });

  it('keeps the volume under its total size by deleting the oldest files of any stream first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    await recording(dir, 'a', 'x', 5, 100); // oldest
    await recording(dir, 'b', 'y', 4, 100);
    await recording(dir, 'a', 'x', 3, 100);
    await recording(dir, 'b', 'y', 2, 100);
    const deleted = await retention(dir, { recordingMaxBytes: 250 * 1024 }).sweep(NOW);
    expect(deleted.map((d) => `${d.file.app} ${d.reason}`)).toEqual(['a volume_size', 'b volume_size']);
    expect(await remaining(dir, 'a', 'x')).toBe(1);
    expect(await remaining(dir, 'b', 'y')).toBe(1);
  });

  it("keeps each rule's streams under its maxBytes and leaves other apps alone", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    for (const age of [6, 5, 4, 3]) await recording(dir, 'small', `k${age % 2}`, age, 100);
    for (const age of [6, 5, 4]) await recording(dir, 'big', 'k', age, 100);
    const rules = [{ app: 'small', key: '*', maxBytes: 150 * 1024 }];
    const deleted = await retention(dir, { recordingRules: rules }).sweep(NOW);
    expect(deleted).toHaveLength(3);
    expect(deleted.every((d) => d.file.app === 'small' && d.reason === 'rule_size')).toBe(true);
    expect((await remaining(dir, 'small', 'k0')) + (await remaining(dir, 'small', 'k1'))).toBe(1);
    expect(await remaining(dir, 'big', 'k')).toBe(3);
    // The one left is the newest.
    expect(await readdir(join(dir, 'small', 'k1'))).toEqual([recordingFileName(new Date(NOW - 3 * HOUR - 60_000), 'fmp4')]);
  });

  it('takes in the files the recorder closes without walking the storage directory, at their size on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    const old = [];
    for (const age of [5, 4, 3, 2]) old.push(await recording(dir, 'old', 'cam', age, 100));
    const config = { ...configSchema.parse({}), recordingSegmentSeconds: 2, recordingMaxBytes: 400 * 1024 };
    const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
    const recorder: Recorder = new Recorder({ hub, storageDir: dir, config, logger, onFileClosed: (path) => r.fileClosed(path) });
    const r = new Retention({ storageDir: dir, config, writing: () => recorder.writing(), logger });
    expect(await r.sweep()).toEqual([]); // the first sweep walks: 400 KiB, within the budget
    // 6 s in segments of 2 s: three files closed, each asking for a sweep.
    const stream = hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
    const now = performance.now();
    for (const tag of (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6 }))).tags) {
      if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, now);
      else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, now);
    }
    hub.closeAll();
    await recorder.close();
    await r.close();
    expect(walks.count).toBe(1);

    const recorded = await readdir(join(dir, 'live', 'cam'));
    const recordedBytes = (await Promise.all(recorded.map((name) => stat(join(dir, 'live', 'cam', name))))).reduce((n, s) => n + s.size, 0);
    expect(recorded.length).toBeGreaterThanOrEqual(3);
    expect(recordedBytes).toBeLessThan(300 * 1024);
    // Their bytes pushed the oldest files out, oldest first, as many as their sizes on disk call for.
    expect(await onDisk(dir)).toEqual([
      ...old.slice(Math.ceil(recordedBytes / (100 * 1024))),
      ...recorded.map((n) => join(dir, 'live', 'cam', n)),
    ]);
  });

  it('holds no list of the files and walks nothing while no limit is set, and walks once one is set live', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    const old = await recording(dir, 'live', 'cam', 30, 1);
    const config: RetentionConfig = { recordingMaxAgeHours: 0, recordingMaxBytes: 0, recordingRules: [] };
    const r = new Retention({ storageDir: dir, config, writing: () => new Map(), logger });
    void r.close();
    r.fileClosed(old);
    expect(await r.sweep(NOW)).toEqual([]);
    expect(await r.sweep(NOW + 16 * 60_000)).toEqual([]);
    expect(walks.count).toBe(0);
    config.recordingRules = [recordingRule.parse({ app: 'live', maxAgeHours: 24 })];
    expect((await r.sweep(NOW + 17 * 60_000)).map((d) => [d.file.path, d.reason])).toEqual([[old, 'age']]);
    expect(walks.count).toBe(1);
  });

  it('takes in a file added by hand at the periodic walk, which runs every 15 minutes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    await recording(dir, 'live', 'cam', 2, 100);
    const r = retention(dir, { recordingMaxBytes: 150 * 1024 });
    expect(await r.sweep(NOW)).toEqual([]);
    const byHand = await recording(dir, 'live', 'cam', 3, 100);
    expect(await r.sweep(NOW + 60_000)).toEqual([]);
    expect(await r.sweep(NOW + 14 * 60_000)).toEqual([]);
    const deleted = await r.sweep(NOW + 15 * 60_000);
    expect(walks.count).toBe(2);
    expect(deleted.map((d) => [d.file.path, d.reason])).toEqual([[byHand, 'volume_size']]);
  });

  it('stops counting a file deleted through the API in the budgets at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    const oldest = await recording(dir, 'live', 'cam', 3, 100);
    const deletedByApi = await recording(dir, 'live', 'cam', 2, 100);
    const writing = new Map<string, number>();
    const r = new Retention({
      storageDir: dir,
      config: { recordingMaxAgeHours: 0, recordingMaxBytes: 250 * 1024, recordingRules: [] },
      writing: () => writing,
      logger,
    });
    const store = new RecordingStore(dir, { filesInUse: () => new Set(writing.keys()), finishing: () => undefined }, (path) =>
      r.forget(path),
    );
    expect(await r.sweep()).toEqual([]);
    await store.remove({ status: 0 } as RouterContext, `live/cam/${deletedByApi.split('/').at(-1)}`, new AbortController().signal);
    // A new file of 100 KiB: 200 KiB on disk, within the budget; counting the deleted file would make it 300.
    const next = await recording(dir, 'live', 'cam', 1, 100);
    r.fileClosed(next);
    await r.close();
    expect(await onDisk(dir)).toEqual([oldest, next]);
    expect(r.stats.deletedFiles).toBe(0);
  });

  it('walks again a minute after a delete failed, and stops counting what it finds no file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    const replaced = await recording(dir, 'live', 'cam', 3, 100);
    const open = join(dir, 'live', 'cam', recordingFileName(new Date(NOW), 'fmp4'));
    await writeFile(open, Buffer.alloc(100 * 1024));
    const writing = new Map([[open, 100 * 1024]]);
    const r = new Retention({
      storageDir: dir,
      config: { recordingMaxAgeHours: 0, recordingMaxBytes: 200 * 1024, recordingRules: [] },
      writing: () => writing,
      logger,
    });
    expect(await r.sweep(NOW)).toEqual([]);
    // Replaced by hand with a directory: its unlink fails (EISDIR) once the open file grows past the budget.
    await rm(replaced);
    await mkdir(replaced);
    writing.set(open, 150 * 1024);
    expect(await r.sweep(NOW + 30_000)).toEqual([]);
    expect(await r.sweep(NOW + 50_000)).toEqual([]);
    expect(walks.count).toBe(1);
    expect(await r.sweep(NOW + 61_000)).toEqual([]);
    expect(walks.count).toBe(2);
    expect(await r.sweep(NOW + 130_000)).toEqual([]);
    expect(walks.count).toBe(2);
  });

  it('keeps a file last written exactly the maximum age ago: only older ones are deleted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    await recording(dir, 'live', 'cam', 24, 1);
    expect(await retention(dir, { recordingMaxAgeHours: 24 }).sweep(NOW)).toEqual([]);
    expect((await retention(dir, { recordingMaxAgeHours: 24 }).sweep(NOW + 1)).map((d) => d.reason)).toEqual(['age']);
  });

  it('trims the volume by the files left after the deletes by age, in the same sweep', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ret-'));
    await recording(dir, 'live', 'cam', 30, 100);
    await recording(dir, 'live', 'cam', 3, 100);
    await recording(dir, 'live', 'cam', 2, 100);
    const deleted = await retention(dir, { recordingMaxAgeHours: 24, recordingMaxBytes: 150 * 1024 }).sweep(NOW);
    expect(deleted.map((d) => d.reason)).toEqual(['age', 'volume_size']);
    expect(await remaining(dir, 'live', 'cam')).toBe(1);
  });
});
