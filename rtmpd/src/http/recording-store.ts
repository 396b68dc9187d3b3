// The recordings under --storage-dir as the API shows, serves and deletes
// them, apart from the API's routes (recordings-api.ts): rtmpd uses the store
// from start on (webhooks name a recording's URL, a fleet's pods serve each
// other's), while the routes and their schemas load at the first API request
// (http/app.ts).
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { RouterContext } from '@koa/router';
import { boundedWait } from '../bounded-wait.ts';
import type { VodFile } from '../hls/vod-playlist.ts';
import { invalidStreamName } from '../hub/names.ts';
import { findRecording, listRecordings, type RecordingFile } from '../storage/catalog.ts';
import type { Recorder } from '../storage/recorder.ts';
import { indexerFor, type RecordingIndex } from '../storage/recording-index.ts';
import { ApiError } from './errors.ts';
import type { RecordingSelection, RecordingView } from './recordings-api.ts';

/** Where the API serves the recordings. */
export const RECORDINGS_PREFIX = '/api/v1/rtmp/recordings';

/**
 * A download's file reads: what it holds ahead of a client that reads
 * slowly or not at all (until --player-stall-timeout-seconds closes it).
 * 16 KiB rather than Node's 64 KiB default: 1,000 downloads nobody reads
 * held 140 MiB instead of 184, and a loopback download was no slower.
 */
const DOWNLOAD_READ_BYTES = 16 * 1024;

/**
 * How long a DELETE waits for a file whose segment has just ended to be
 * written out, synced and closed (usually milliseconds; a slow disk's sync
 * can take seconds). Past it the DELETE is refused, to be retried.
 */
const FINISH_WAIT_MS = 5000;

export const recordingUrl = (id: string): string => `${RECORDINGS_PREFIX}/${encodeURIComponent(id)}`;

/** What the store asks the recorder about the files it is writing. */
export type FilesBeingWritten = Pick<Recorder, 'filesInUse' | 'finishing'>;

/** A recording file as a selection found it, and whether the recorder was writing it then. */
export interface SelectedRecording extends RecordingFile {
  writing: boolean;
}

/** The walks of one part of the storage directory: the one running, and the next, which the requests asking meanwhile share. */
interface Walks {
  running?: Promise<RecordingFile[]> | undefined;
  next?: Promise<RecordingFile[]> | undefined;
}

/** The recordings under --storage-dir, as the API selects, shows, serves and deletes them. */
export class RecordingStore {
  private readonly storageDir: string;
  private readonly writing: FilesBeingWritten;
  private readonly onDeleted: (path: string) => void;
  /** By the part walked (`<app>/<key>`, either empty for all); only while a walk runs or waits. */
  private readonly walks = new Map<string, Walks>();

  /** `onDeleted`: a recording was deleted through the API (retention stops counting it). */
  constructor(storageDir: string, writing: FilesBeingWritten, onDeleted: (path: string) => void = () => {}) {
    this.storageDir = storageDir;
    this.writing = writing;
    this.onDeleted = onDeleted;
  }

  /**
   * The recordings of a stream selection that overlap its time range, oldest
   * first. The recorder is asked once which files it writes: the time range
   * and the views made of the selection (views) both take that answer.
   */
  async select(query: RecordingSelection): Promise<SelectedRecording[]> {
    let [app, key] = [query.app, query.key];
    if (query.stream_id) [, app, key] = query.stream_id.split('/');
    for (const [what, value] of [
      ['app', app],
      ['key', key],
    ] as const) {
      if (value !== undefined && invalidStreamName(what === 'app' ? value : 'a', what === 'key' ? value : 'a'))
        throw new ApiError(400, 'bad_request', `invalid ${what} "${value}"`);
    }
    const files = await this.walk(app, key);
    // A file ends where the stream's next one starts; the last one at its last write, or now while it is written
    // (its last write may be a fragment ago).
    const writing = this.writing.filesInUse();
    const now = Date.now();
    const next = new Map<string, number>();
    const ends = new Map<RecordingFile, number>();
    for (const f of [...files].reverse()) {
      const stream = `${f.app}/${f.key}`;
      ends.set(f, next.get(stream) ?? (writing.has(f.path) ? now : f.modified.getTime()));
      next.set(stream, f.start.getTime());
    }
    return files
      .filter(
        (f) => (query.end === undefined || f.start.getTime() <= query.end) && (query.start === undefined || ends.get(f)! > query.start),
      )
      .map((f) => ({ ...f, writing: writing.has(f.path) }));
  }

  /**
   * The recordings of an app or stream (all when neither is given), from a
   * walk that starts after this call, so a file just finished or deleted
   * shows as it is now. Any client may list, and a walk of 100,000 files
   * takes seconds and 50-75 MiB of heap: one walk of a part runs at a time,
   * and the requests that ask while it runs share the next one.
   */
  private walk(app: string | undefined, key: string | undefined): Promise<RecordingFile[]> {
    const part = `${app ?? ''}/${key ?? ''}`;
    let walks = this.walks.get(part);
    if (!walks) this.walks.set(part, (walks = {}));
    if (walks.next) return walks.next;
    const next = (async () => {
      await walks.running;
      walks.next = undefined;
      const running = listRecordings(this.storageDir, { app, key });
      walks.running = running;
      const files = await running;
      if (!walks.next) this.walks.delete(part);
      return files;
    })();
    walks.next = next;
    return next;
  }

  /** The views of `files`; a file whose index cannot be read (gone meanwhile, or the client left: `signal`) shows no duration. */
  views(files: readonly SelectedRecording[], signal?: AbortSignal): Promise<RecordingView[]> {
    const index = indexerFor(signal);
    return Promise.all(files.map((file) => view(file, file.writing, index)));
  }

  /** The view of one file found by its id (a webhook's recording.completed). */
  viewOf(file: RecordingFile): Promise<RecordingView> {
    return view(file, this.writing.filesInUse().has(file.path), indexerFor());
  }

  /**
   * A stream's fMP4 files for a VOD playlist, each addressed by `uriOf` its
   * id; a file whose index cannot be read (deleted meanwhile, or the client
   * left: `signal`) is left out.
   */
  async vod(query: RecordingSelection, uriOf: (id: string) => string, signal?: AbortSignal): Promise<VodFile[]> {
    const files = (await this.select(query)).filter((f) => f.format === 'fmp4');
    const index = indexerFor(signal);
    const vod = await Promise.all(
      files.map((file) =>
        index(file).then(
          ({ initSize, fragments }): VodFile => ({ uri: uriOf(file.id), wallClock: file.start.getTime(), initSize, fragments }),
          () => undefined,
        ),
      ),
    );
    return vod.filter((f) => f !== undefined);
  }

  private async file(id: string): Promise<RecordingFile> {
    const file = await findRecording(this.storageDir, id);
    if (!file)
      throw new ApiError(
        404,
        'recording_not_found',
        `no recording ${JSON.stringify(id)}; ids are <app>/<key>/<file> as listed by GET ${RECORDINGS_PREFIX}`,
      );
    return file;
  }

  /** Answers with recording `id` (`<app>/<key>/<file>`), or the byte range asked for. */
  async download(ctx: RouterContext, id: string): Promise<void> {
    const file = await this.file(id);
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges');
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = file.format === 'fmp4' ? 'video/mp4' : 'video/x-flv';
    const range = byteRange(ctx.get('range'), file.size);
    if (range === 'unsatisfiable') {
      ctx.set('Content-Range', `bytes */${file.size}`);
      throw new ApiError(416, 'range_not_satisfiable', `the file has ${file.size} bytes`);
    }
    const [start, end] = range ?? [0, file.size - 1];
    if (range) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${start}-${end}/${file.size}`);
    }
    ctx.length = end - start + 1;
    ctx.body = file.size === 0 ? '' : createReadStream(file.path, { start, end, highWaterMark: DOWNLOAD_READ_BYTES });
  }

  /** Deletes recording `id`; a client that leaves (`signal`) while the file is being finished deletes nothing. */
  async remove(ctx: RouterContext, id: string, signal: AbortSignal): Promise<void> {
    const file = await this.file(id);
    // A file whose segment has just ended is still being written out and synced: it is deleted once it is
    // whole and closed, not under the recorder (which would then announce a file that is gone).
    const finishing = this.writing.finishing(file.path);
    const waited = finishing && (await settlesWithin(finishing, FINISH_WAIT_MS, signal));
    if (waited === 'left') return;
    if (waited === 'late')
      throw new ApiError(409, 'recording_in_progress', `${file.id} is being written out and closed; retry in a few seconds`, {
        'Retry-After': String(FINISH_WAIT_MS / 1000),
      });
    if (this.writing.filesInUse().has(file.path))
      throw new ApiError(409, 'recording_in_progress', `${file.id} is being written; it can be deleted once its segment ends`);
    try {
      await unlink(file.path);
    } catch {
      throw new ApiError(404, 'recording_not_found', `no recording ${file.id}`);
    }
    this.onDeleted(file.path);
    ctx.status = 204;
  }
}

async function view(
  file: RecordingFile,
  writing: boolean,
  index: (file: RecordingFile) => Promise<RecordingIndex>,
): Promise<RecordingView> {
  const { duration } = await index(file).catch(() => ({ duration: 0 }));
  return {
    id: file.id,
    stream_id: `rtmp/${file.app}/${file.key}`,
    app: file.app,
    key: file.key,
    format: file.format,
    start_time: file.start.toISOString(),
    end_time: new Date(file.start.getTime() + duration * 1000).toISOString(),
    duration_seconds: Math.round(duration * 1000) / 1000,
    size_bytes: file.size,
    recording: writing,
    url: recordingUrl(file.id),
  };
}

/** Whether `work` settles within `ms`, or `signal` aborts first; no timer or listener outlives the answer. */
function settlesWithin(work: Promise<void>, ms: number, signal: AbortSignal): Promise<'settled' | 'late' | 'left'> {
  return boundedWait<'settled' | 'late' | 'left'>(ms, signal, { timedOut: 'late', aborted: 'left' }, (settle) => {
    const settled = () => settle('settled');
    work.then(settled, settled);
    // A promise cannot be unsubscribed from: a late settle after the wait ended is ignored.
    return () => {};
  });
}

/** A single `bytes=` range (first-last, first-, or -suffix); undefined: the whole file (no or an unsupported Range). */
function byteRange(header: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return [start, end];
}
