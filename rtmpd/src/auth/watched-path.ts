// A file or directory of secrets that is re-read while rtmpd runs: keys,
// HMAC secrets, JWT keys, API tokens. A mounted Kubernetes Secret is a
// directory whose files the kubelet swaps through a `..data` symlink, which
// an inotify watch on a path can miss, so the path is polled: every
// interval the entries are read again and `onChange` runs when they differ.
// A read that fails keeps the last good entries (and says so in the log).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../telemetry/logger.ts';

/** Bounds on what a mounted secret may make rtmpd hold. */
const MAX_ENTRIES = 10_000;
const MAX_FILE_BYTES = 1 << 20;

/** A file's text under '', or each file of a directory under its name (hidden entries such as `..data` skipped). */
export type Entries = ReadonlyMap<string, string>;

export class SecretPathError extends Error {}

export async function readEntries(path: string): Promise<Entries> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new SecretPathError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
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

async function readBounded(file: string): Promise<string> {
  const info = await stat(file);
  if (info.size > MAX_FILE_BYTES) throw new SecretPathError(`${file} is larger than ${MAX_FILE_BYTES} bytes`);
  return readFile(file, 'utf8');
}

/** The non-empty, trimmed lines of a text that are not # comments. */
export const lines = (text: string): string[] =>
  text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

export interface WatchedPathOptions<T> {
  path: string;
  /** What the path holds, as the log names it: "auth: secrets", "webhooks: signing keys". */
  label: string;
  /** Turns the entries into what the owner uses; throws SecretPathError for content it cannot use. */
  parse: (entries: Entries) => T;
  logger: Logger;
  intervalMs: number;
  /** Runs after a change was read and parsed. */
  onChange?: (value: T) => void;
}

export class WatchedPath<T> {
  value: T;
  private readonly options: WatchedPathOptions<T>;
  private readonly timer: NodeJS.Timeout;
  private fingerprint: string;
  private polling = false;
  private failing = false;

  private constructor(options: WatchedPathOptions<T>, value: T, fingerprint: string) {
    this.options = options;
    this.value = value;
    this.fingerprint = fingerprint;
    this.timer = setInterval(() => void this.poll(), options.intervalMs);
    this.timer.unref();
  }

  /** Reads the path once (a missing or unusable path is an error at start) and keeps polling it. */
  static async open<T>(options: WatchedPathOptions<T>): Promise<WatchedPath<T>> {
    const entries = await readEntries(options.path);
    return new WatchedPath(options, options.parse(entries), fingerprintOf(entries));
  }

  /** Reads the path now; resolves once any change has been applied. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const entries = await readEntries(this.options.path);
      const fingerprint = fingerprintOf(entries);
      if (fingerprint !== this.fingerprint) {
        this.value = this.options.parse(entries);
        this.fingerprint = fingerprint;
        this.options.logger.info({ path: this.options.path }, `${this.options.label} reloaded`);
        this.options.onChange?.(this.value);
      }
      this.failing = false;
    } catch (err) {
      // Logged once per failing spell, not every interval.
      if (!this.failing)
        this.options.logger.error(
          { path: this.options.path, err: (err as Error).message },
          `${this.options.label} not reloaded; the last good ones stay`,
        );
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

const fingerprintOf = (entries: Entries): string => JSON.stringify([...entries]);
