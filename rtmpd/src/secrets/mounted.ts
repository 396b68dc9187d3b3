// Secrets mounted as files: a file, or a directory of files such as a
// Kubernetes Secret volume (whose `..data` entries are the kubelet's own).
// Reads are bounded, and watchPath keeps reading them while rtmpd runs.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../options.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Watched } from './watched.ts';

/** Bounds on what a mounted secret may make rtmpd hold. */
const MAX_ENTRIES = 10_000;
const MAX_FILE_BYTES = 1 << 20;

/** A file's text under '', or each file of a directory under its name (hidden entries such as `..data` skipped). */
export type Entries = ReadonlyMap<string, string>;

export class SecretPathError extends Error {
  override name = 'SecretPathError';
}

export async function readEntries(path: string): Promise<Entries> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new SecretPathError(`cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!info.isDirectory()) return new Map([['', await readBounded(path)]]);
  const names = (await readdir(path)).filter((name) => !name.startsWith('.')).sort();
  if (names.length > MAX_ENTRIES) throw new SecretPathError(`${path} holds more than ${MAX_ENTRIES} files`);
  const entries = new Map<string, string>();
  for (const name of names) {
    const file = join(path, name);
    if ((await stat(file)).isFile()) entries.set(name, await readBounded(file));
  }
  return entries;
}

/** A file's text; one larger than a secret could be is refused. */
export async function readBounded(file: string): Promise<string> {
  const info = await stat(file);
  if (info.size > MAX_FILE_BYTES) throw new SecretPathError(`${file} is larger than ${MAX_FILE_BYTES} bytes`);
  return readFile(file, 'utf8');
}

/**
 * Where to read `files` so that all of them come from one version of a mounted
 * Secret. The kubelet mounts each version in a directory of its own that
 * `..data` links to, and renews by pointing `..data` at the next one; files
 * read through their own links one after the other can straddle a renewal and
 * pair an old certificate with a new key. Files that sit in one directory with
 * a `..data` are read from the version it points to now; others where they are.
 */
export async function inOneVersion(files: readonly string[]): Promise<string[]> {
  const dirs = new Set(files.map((file) => dirname(resolve(file))));
  if (dirs.size !== 1) return [...files];
  const data = join([...dirs][0]!, '..data');
  let version: string;
  try {
    version = await realpath(data);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No `..data` (or no directory): not a Secret volume, or nothing there yet, which reading the files reports.
    if (code === 'ENOENT' || code === 'ENOTDIR') return [...files];
    throw new SecretPathError(`${data}: cannot resolve it (${code ?? (err as Error).message})`);
  }
  return files.map((file) => join(version, basename(file)));
}

/** The non-empty, trimmed lines of a text that are not # comments. */
export const lines = (text: string): string[] =>
  text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

export interface WatchedPathOptions<T> {
  path: string;
  /** The option that named the path, as an error at start names it: "--api-token-file", "--auth-rules [1] (keys)". */
  option: string;
  /** What the path holds, as the log names it: "auth: secrets", "webhooks: signing keys". */
  label: string;
  /** Turns the entries into what the owner uses; throws SecretPathError for content it cannot use. */
  parse: (entries: Entries) => T;
  logger: Logger;
  intervalMs: number;
  onChange?: (value: T) => void;
}

export type WatchedPath<T> = Watched<Entries, T>;

/**
 * Reads a file or directory of secrets once and keeps polling it. A missing or
 * unusable one at start is a ConfigError naming the option and the path: the
 * user's to fix, so rtmpd stops with that one line, as for a bad flag.
 */
export async function watchPath<T>({ path, option, ...options }: WatchedPathOptions<T>): Promise<WatchedPath<T>> {
  try {
    return await Watched.open({
      ...options,
      read: () => readEntries(path),
      textOf: (entries) => JSON.stringify([...entries]),
      logFields: () => ({ path }),
    });
  } catch (err) {
    throw new ConfigError(`${option} ${path}: ${(err as Error).message}`);
  }
}
