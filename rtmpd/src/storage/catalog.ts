// The recordings on disk: `<storage-dir>/<app>/<key>/<start time>.<mp4|flv>`.
// Names are checked against one pattern both ways (writing and reading), so
// a recording id can only ever name a file inside the storage directory.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidStreamName } from '../hub/names.ts';

export type RecordingFormat = 'fmp4' | 'flv';

/** `2026-11-24T07-30-00.000Z.mp4`: ISO 8601 with `-` for `:` (portable), so names sort in time order. */
const FILE_NAME = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2}\.\d{3})Z\.(mp4|flv)$/;

export interface RecordingFile {
  /** `<app>/<key>/<file name>`: the API's recording id. */
  id: string;
  app: string;
  key: string;
  name: string;
  path: string;
  format: RecordingFormat;
  /** Start time, from the name. */
  start: Date;
  size: number;
  /** Last write: the end of the recording, for retention by age. */
  modified: Date;
}

export function recordingFileName(start: Date, format: RecordingFormat): string {
  return `${start.toISOString().replace(/:/g, '-')}.${format === 'fmp4' ? 'mp4' : 'flv'}`;
}

/** The start time a recording file name carries, or undefined when it is not one. */
export function parseRecordingName(name: string): { start: Date; format: RecordingFormat } | undefined {
  const m = FILE_NAME.exec(name);
  if (!m) return undefined;
  const start = new Date(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`);
  if (Number.isNaN(start.getTime())) return undefined;
  return { start, format: m[5] === 'mp4' ? 'fmp4' : 'flv' };
}

/** Splits a recording id into its parts, or undefined when it is not exactly `<app>/<key>/<recording file name>`. */
export function parseRecordingId(id: string): { app: string; key: string; name: string } | undefined {
  const parts = id.split('/');
  if (parts.length !== 3) return undefined;
  const [app, key, name] = parts as [string, string, string];
  if (invalidStreamName(app, key) !== undefined || parseRecordingName(name) === undefined) return undefined;
  return { app, key, name };
}

/** One recording by id: a regular file (never a symlink) under the storage directory, or undefined. */
export async function findRecording(storageDir: string, id: string): Promise<RecordingFile | undefined> {
  const parsed = parseRecordingId(id);
  if (!parsed) return undefined;
  return describe(storageDir, parsed.app, parsed.key, parsed.name);
}

/**
 * Every recording under the storage directory, oldest first; of one app, or
 * one stream, when they are given (a walk reads one directory per stream and
 * looks up each file: 3-11 s for 100,000 files).
 */
export async function listRecordings(
  storageDir: string,
  only: { app?: string | undefined; key?: string | undefined } = {},
): Promise<RecordingFile[]> {
  const files: RecordingFile[] = [];
  for (const app of only.app !== undefined ? [only.app] : await names(storageDir)) {
    for (const key of only.key !== undefined ? [only.key] : await names(join(storageDir, app))) {
      if (invalidStreamName(app, key) !== undefined) continue;
      for (const name of await names(join(storageDir, app, key))) {
        const file = await describe(storageDir, app, key, name);
        if (file) files.push(file);
      }
    }
  }
  return files.sort((a, b) => a.start.getTime() - b.start.getTime() || a.id.localeCompare(b.id));
}

/** A recording file from its place, what its name says (`parsed`) and what the file system says of it. */
export function recordingFile(
  storageDir: string,
  { app, key, name }: { app: string; key: string; name: string },
  parsed: { start: Date; format: RecordingFormat },
  { size, modified }: { size: number; modified: Date },
): RecordingFile {
  return { id: `${app}/${key}/${name}`, app, key, name, path: join(storageDir, app, key, name), ...parsed, size, modified };
}

async function describe(storageDir: string, app: string, key: string, name: string): Promise<RecordingFile | undefined> {
  const parsed = parseRecordingName(name);
  if (!parsed) return undefined;
  try {
    // lstat: a symlink planted in the storage directory is not followed out of it.
    const stats = await lstat(join(storageDir, app, key, name));
    if (!stats.isFile()) return undefined;
    return recordingFile(storageDir, { app, key, name }, parsed, { size: stats.size, modified: stats.mtime });
  } catch {
    return undefined;
  }
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
