import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let tempCounter = 0;

/**
 * Writes through a temporary file and a rename, so a reader (a dashboard, a
 * sidecar uploading thumbnails) never sees a half-written image.
 */
export async function writeFileAtomic(path: string, data: Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${++tempCounter}.tmp`);
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Timestamped snapshot names sort by time: `2026-02-19T07-30-00.000Z.jpg`. */
const TIMESTAMPED = /^\d{4}-\d{2}-\d{2}T[\d-]+(\.\d+)?Z\.jpg$/;

export const timestampedName = (at: Date): string => `${at.toISOString().replace(/:/g, '-')}.jpg`;

/** Deletes the oldest timestamped snapshots in `dir` beyond the newest `keep`; returns how many. */
export async function pruneTimestamped(dir: string, keep: number): Promise<number> {
  const names = (await readdir(dir)).filter((name) => TIMESTAMPED.test(name)).sort();
  const stale = names.slice(0, Math.max(0, names.length - keep));
  await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
  return stale.length;
}
