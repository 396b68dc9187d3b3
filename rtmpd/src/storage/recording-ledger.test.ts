import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recordingFileName } from './catalog.ts';
import { RecordingLedger } from './recording-ledger.ts';

const dir = await mkdtemp(join(tmpdir(), 'rtmpd-ledger-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A recording file of `bytes` bytes under `storageDir`, started at `start`. */
async function recordingAt(storageDir: string, start: number, bytes: number): Promise<string> {
  await mkdir(join(storageDir, 'live', 'cam'), { recursive: true });
  const path = join(storageDir, 'live', 'cam', recordingFileName(new Date(start), 'fmp4'));
  await writeFile(path, Buffer.alloc(bytes));
  return path;
}

const sizes = (ledger: RecordingLedger): number[] => ledger.oldestFirst().map((f) => f.size);

describe('the recording ledger', () => {
  it('keeps out a file taken out while a walk ran, though the walk found it', async () => {
    const storageDir = join(dir, 'walk');
    const path = await recordingAt(storageDir, 0, 10);
    const ledger = new RecordingLedger(storageDir);
    const walking = ledger.walk();
    // Deleted (through the API, say) after the walk read its directory: the walk's answer still holds it.
    ledger.forget(path);
    await walking;
    expect(ledger.oldestFirst()).toEqual([]);
  });

  it('follows a file being written across a walk: its growth after the walk is counted', async () => {
    const storageDir = join(dir, 'follow');
    const path = await recordingAt(storageDir, 0, 10);
    const ledger = new RecordingLedger(storageDir);
    await ledger.follow(new Map([[path, 10]]), 1);
    await ledger.walk();
    await ledger.follow(new Map([[path, 500]]), 2);
    expect(sizes(ledger)).toEqual([500]);
  });
});
