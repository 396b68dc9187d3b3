// What retention knows of the recording files, so that a sweep reads memory
// rather than the storage directory (a walk of 100,000 files takes 3-11 s of
// libuv's threads, which the recorder's writes share, and 54-76 MiB of heap).
// A walk fills the ledger; the files the recorder writes are taken in as it
// reports them and looked up once when it is done with them; deletes take
// files out. What changes by hand shows at the next walk.
import { join, relative, sep } from 'node:path';
import { findRecording, listRecordings, parseRecordingId, parseRecordingName, recordingFile, type RecordingFile } from './catalog.ts';

/** A recording file as the ledger keeps it: with its map entry and place in the list, about 230 bytes of heap (100,000 files: 22 MiB). */
export interface LedgerFile {
  readonly stream: LedgerStream;
  readonly name: string;
  /** Start time (ms), from the name. */
  readonly start: number;
  size: number;
  /** Last write (ms). */
  modified: number;
  /** Taken out of the ledger (a sweep holding the list of files skips it). */
  gone: boolean;
}

export interface LedgerStream {
  readonly app: string;
  readonly key: string;
  readonly files: Map<string, LedgerFile>;
}

export class RecordingLedger {
  private readonly storageDir: string;
  /** By `<app>/<key>`. */
  private streams = new Map<string, LedgerStream>();
  /** Every file, oldest first once `oldestFirst` has run; files taken out stay here until then. */
  private order: LedgerFile[] = [];
  private sorted = true;
  /** The files the recorder was writing at the last `follow`, by path, to be looked up once it is done with them. */
  private readonly written = new Map<string, LedgerFile>();
  /** Files the recorder has closed since the last `follow`, to be looked up. */
  private readonly finished = new Set<string>();
  /** While a walk runs: the files taken out meanwhile, which its answer may still hold. */
  private forgottenDuringWalk: Set<string> | undefined;

  constructor(storageDir: string) {
    this.storageDir = storageDir;
  }

  /** Replaces what the ledger holds with a walk of the whole storage directory. */
  async walk(): Promise<void> {
    const forgotten = new Set<string>();
    this.forgottenDuringWalk = forgotten;
    const files = await listRecordings(this.storageDir).finally(() => (this.forgottenDuringWalk = undefined));
    for (const file of this.order) file.gone = true;
    this.streams = new Map();
    this.order = [];
    this.sorted = true;
    for (const file of files) this.put(file.app, file.key, file.name, file.size, file.modified.getTime());
    for (const path of forgotten) this.forget(path);
  }

  /** The recorder closed `path` (perhaps opened after the last `follow`): looked up at the next. */
  closed(path: string): void {
    this.finished.add(path);
  }

  /**
   * Takes in the files the recorder writes now (`writing`: path → bytes so
   * far, last written `now`), and looks up the ones it has closed and those
   * it wrote at the last call and is done with: closed whole, cut back after
   * a disk error, or removed for holding nothing.
   */
  async follow(writing: ReadonlyMap<string, number>, now: number): Promise<void> {
    for (const [path, bytes] of writing) {
      const known = this.written.get(path);
      if (known && !known.gone) {
        known.size = bytes;
        known.modified = now;
        continue;
      }
      const id = this.idOf(path);
      if (id) this.written.set(path, this.put(id.app, id.key, id.name, bytes, now));
    }
    for (const path of this.written.keys()) {
      if (writing.has(path)) continue;
      this.written.delete(path);
      this.finished.add(path);
    }
    for (const path of [...this.finished]) {
      this.finished.delete(path);
      if (!writing.has(path)) await this.lookUp(path);
    }
  }

  /** Takes a file out: deleted (by retention, the API), or found gone. */
  forget(path: string): void {
    this.forgottenDuringWalk?.add(path);
    const id = this.idOf(path);
    if (!id) return;
    const stream = this.streams.get(`${id.app}/${id.key}`);
    const file = stream?.files.get(id.name);
    if (!stream || !file) return;
    stream.files.delete(id.name);
    file.gone = true;
    this.sorted = false;
    if (stream.files.size === 0) this.streams.delete(`${id.app}/${id.key}`);
  }

  /** Every file the ledger holds, oldest first (by start time, then id). */
  oldestFirst(): readonly LedgerFile[] {
    if (!this.sorted) {
      // Files are mostly taken in newest last: the sort finds long runs already in order.
      this.order = this.order.filter((f) => !f.gone).sort(olderFirst);
      this.sorted = true;
    }
    return this.order;
  }

  pathOf(file: LedgerFile): string {
    return join(this.storageDir, file.stream.app, file.stream.key, file.name);
  }

  /** `file` as the catalog describes one. */
  describe(file: LedgerFile): RecordingFile {
    const { app, key } = file.stream;
    const { size, modified, name } = file;
    return recordingFile(this.storageDir, { app, key, name }, parseRecordingName(name)!, { size, modified: new Date(modified) });
  }

  private async lookUp(path: string): Promise<void> {
    const id = this.idOf(path);
    const file = id && (await findRecording(this.storageDir, `${id.app}/${id.key}/${id.name}`));
    if (file) this.put(file.app, file.key, file.name, file.size, file.modified.getTime());
    else this.forget(path);
  }

  private put(app: string, key: string, name: string, size: number, modified: number): LedgerFile {
    let stream = this.streams.get(`${app}/${key}`);
    if (!stream) this.streams.set(`${app}/${key}`, (stream = { app, key, files: new Map() }));
    const known = stream.files.get(name);
    if (known) {
      known.size = size;
      known.modified = modified;
      return known;
    }
    const file: LedgerFile = { stream, name, start: parseRecordingName(name)!.start.getTime(), size, modified, gone: false };
    stream.files.set(name, file);
    const last = this.order.at(-1);
    if (last && olderFirst(file, last) < 0) this.sorted = false;
    this.order.push(file);
    return file;
  }

  /** The app, key and name of a recording file's path under the storage directory, or undefined when it is none. */
  private idOf(path: string): { app: string; key: string; name: string } | undefined {
    return parseRecordingId(relative(this.storageDir, path).split(sep).join('/'));
  }
}

function olderFirst(a: LedgerFile, b: LedgerFile): number {
  return a.start - b.start || idOf(a).localeCompare(idOf(b));
}

const idOf = (f: LedgerFile): string => `${f.stream.app}/${f.stream.key}/${f.name}`;
