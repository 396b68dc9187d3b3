import { mkdir, mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { recordingFileName } from './catalog.ts';
import { Retention, type RetentionConfig } from './retention.ts';

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

function retention(storageDir: string, config: Partial<RetentionConfig>, inUse: string[] = []): Retention {
  const r = new Retention({
    storageDir,
    config: { recordingMaxAgeHours: 0, recordingMaxBytes: 0, recordingRules: [], ...config },
    inUse: () => new Set(inUse),
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
});
