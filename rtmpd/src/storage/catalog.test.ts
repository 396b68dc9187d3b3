import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findRecording, listRecordings, parseRecordingId, parseRecordingName, recordingFileName } from './catalog.ts';

const dir = await mkdtemp(join(tmpdir(), 'rtmpd-catalog-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const START = new Date('2026-11-24T07:30:00.000Z');
const NAME = recordingFileName(START, 'fmp4');

async function recordingAt(storageDir: string, app: string, key: string, name = NAME): Promise<void> {
  await mkdir(join(storageDir, app, key), { recursive: true });
  await writeFile(join(storageDir, app, key, name), 'media');
}

describe('recording names', () => {
  it('are read back as the start time and format they were written from', () => {
    expect(NAME).toBe('2026-11-24T07-30-00.000Z.mp4');
    expect(parseRecordingName(NAME)).toEqual({ start: START, format: 'fmp4' });
  });

  it('of a date that does not exist are no recording names, though they match the pattern', () => {
    expect(parseRecordingName('2026-13-01T00-00-00.000Z.mp4')).toBeUndefined();
    expect(parseRecordingName('2026-01-01T23-60-00.000Z.flv')).toBeUndefined();
  });
});

describe('recording ids', () => {
  it('are exactly <app>/<key>/<recording file name>: nothing may follow the name', () => {
    expect(parseRecordingId(`live/cam/${NAME}`)).toEqual({ app: 'live', key: 'cam', name: NAME });
    expect(parseRecordingId(`live/cam/${NAME}/more`)).toBeUndefined();
    expect(parseRecordingId(`cam/${NAME}`)).toBeUndefined();
  });
});

describe('the recordings listed', () => {
  it('are those of valid stream names only: a directory of a reserved app or an invalid key is passed over', async () => {
    const storageDir = join(dir, 'names');
    await recordingAt(storageDir, 'live', 'cam');
    await recordingAt(storageDir, 'api', 'cam');
    await recordingAt(storageDir, 'live', '.hidden');
    expect((await listRecordings(storageDir)).map((f) => f.id)).toEqual([`live/cam/${NAME}`]);
  });

  it('are ordered by start time, then by id as the ledger orders them (case aside), not in the byte order directories are read in', async () => {
    const storageDir = join(dir, 'order');
    await recordingAt(storageDir, 'live', 'cam-B');
    await recordingAt(storageDir, 'live', 'cam-a');
    await recordingAt(storageDir, 'live', 'cam-c', recordingFileName(new Date(START.getTime() - 1), 'flv'));
    expect((await listRecordings(storageDir)).map((f) => f.id)).toEqual([
      'live/cam-c/2026-11-24T07-29-59.999Z.flv',
      `live/cam-a/${NAME}`,
      `live/cam-B/${NAME}`,
    ]);
  });

  it('are regular files: a symlink with a recording name, even to one, is neither listed nor found', async () => {
    const storageDir = join(dir, 'links');
    await recordingAt(storageDir, 'live', 'cam');
    await mkdir(join(storageDir, 'live', 'link'));
    await symlink(join(storageDir, 'live', 'cam', NAME), join(storageDir, 'live', 'link', NAME));
    expect((await listRecordings(storageDir)).map((f) => f.id)).toEqual([`live/cam/${NAME}`]);
    expect(await findRecording(storageDir, `live/link/${NAME}`)).toBeUndefined();
    expect((await findRecording(storageDir, `live/cam/${NAME}`))?.size).toBe(5);
  });
});
