import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import { renderVodPlaylist, type VodFile } from '../hls/vod-playlist.ts';
import { invalidStreamName } from '../hub/names.ts';
import { findRecording, listRecordings, type RecordingFile } from '../storage/catalog.ts';
import type { Recorder } from '../storage/recorder.ts';
import { indexRecording } from '../storage/recording-index.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type RouteGroup } from './routing.ts';

export interface RecordingsApiOptions {
  store: RecordingStore;
  /** In a fleet: the recordings of every pod (fleet/recordings.ts). */
  fleet?: FleetRecordings;
}

const PREFIX = '/api/v1/rtmp/recordings';

/**
 * A download's file reads: what it holds ahead of a client that reads
 * slowly or not at all (until --player-stall-timeout-seconds closes it).
 * 16 KiB rather than Node's 64 KiB default: 1,000 downloads nobody reads
 * held 140 MiB instead of 184, and a loopback download was no slower.
 */
const DOWNLOAD_READ_BYTES = 16 * 1024;

/** A recording as the API shows it. */
export const recordingViewSchema = z.object({
  id: z.string().describe('`<app>/<key>/<file>`; in a fleet `<pod>/<app>/<key>/<file>`'),
  stream_id: z.string(),
  app: z.string(),
  key: z.string(),
  format: z.enum(['fmp4', 'flv']),
  start_time: z.iso.datetime(),
  end_time: z.iso.datetime(),
  duration_seconds: z.number().nonnegative(),
  size_bytes: z.number().int().nonnegative(),
  recording: z.boolean().describe('still being written'),
  url: z.string().describe('its download (HTTP range requests too)'),
  pod: z.string().optional().describe('in a fleet: the pod that holds it'),
});
export type RecordingView = z.infer<typeof recordingViewSchema>;

/** GET /api/v1/rtmp/recordings: a page, and the token of the next one (null: the last page). */
export const recordingListSchema = z.object({
  recordings: z.array(recordingViewSchema),
  next_page_token: z.string().nullable(),
  unreachable_pods: z
    .array(z.string())
    .optional()
    .describe('in a fleet: live pods that did not answer, whose recordings are missing from the list'),
});
export type FleetRecordingList = Required<z.infer<typeof recordingListSchema>>;

export interface FleetRecordings {
  /** This pod's name, the first part of the ids of its recordings. */
  pod: string;
  /** A page of every live pod's recordings, ids qualified by the pod that holds them. */
  list(query: RecordingListQuery): Promise<FleetRecordingList>;
  /** The fMP4 files of a stream on every live pod, in time order. */
  vod(query: RecordingSelection): Promise<VodFile[]>;
  /** Serves a download or delete of `id` (`<app>/<key>/<file>`) from `pod`, which holds it. */
  forward(ctx: RouterContext, pod: string, id: string): Promise<void>;
}

const time = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), 'expected an RFC 3339 time such as 2026-11-24T07:30:00Z')
  .transform((v) => Date.parse(v));

export const recordingSelection = z.object({
  stream_id: z
    .string()
    .regex(/^rtmp\/[^/]+\/[^/]+$/, 'expected rtmp/<app>/<key>')
    .optional()
    .describe("one stream's recordings (rtmp/<app>/<key>)"),
  app: z.string().optional().describe("an app's recordings"),
  key: z.string().optional().describe("a stream key's recordings"),
  start: time.optional().describe('recordings that end after this RFC 3339 time'),
  end: time.optional().describe('recordings that start before this RFC 3339 time'),
});
export type RecordingSelection = z.infer<typeof recordingSelection>;

const pageLimit = wholeNumber(1, 1000).default(100);
const listQuery = recordingSelection.extend({
  limit: pageLimit.describe('recordings per page'),
  page_token: z.string().max(1024).optional().describe('the next_page_token of the page before'),
});
export type RecordingListQuery = z.infer<typeof listQuery>;

export const recordingUrl = (id: string): string => `${PREFIX}/${encodeURIComponent(id)}`;

/** What the store asks the recorder about the files it is writing. */
export type FilesBeingWritten = Pick<Recorder, 'filesInUse' | 'finishing'>;

/** The recordings under --storage-dir, as the API selects, shows, serves and deletes them. */
export class RecordingStore {
  private readonly storageDir: string;
  private readonly writing: FilesBeingWritten;

  constructor(storageDir: string, writing: FilesBeingWritten) {
    this.storageDir = storageDir;
    this.writing = writing;
  }

  /** The recordings of a stream selection that overlap its time range, oldest first. */
  async select(query: RecordingSelection): Promise<RecordingFile[]> {
    let [app, key] = [query.app, query.key];
    if (query.stream_id) [, app, key] = query.stream_id.split('/');
    for (const [what, value] of [
      ['app', app],
      ['key', key],
    ] as const) {
      if (value !== undefined && invalidStreamName(what === 'app' ? value : 'a', what === 'key' ? value : 'a'))
        throw new ApiError(400, 'bad_request', `invalid ${what} "${value}"`);
    }
    const files = (await listRecordings(this.storageDir)).filter(
      (f) => (app === undefined || f.app === app) && (key === undefined || f.key === key),
    );
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
    return files.filter(
      (f) => (query.end === undefined || f.start.getTime() <= query.end) && (query.start === undefined || ends.get(f)! > query.start),
    );
  }

  views(files: readonly RecordingFile[]): Promise<RecordingView[]> {
    const writing = this.writing.filesInUse();
    return Promise.all(files.map((file) => view(file, writing.has(file.path))));
  }

  /** A stream's fMP4 files for a VOD playlist, each addressed by `uriOf` its id. */
  async vod(query: RecordingSelection, uriOf: (id: string) => string): Promise<VodFile[]> {
    const files = (await this.select(query)).filter((f) => f.format === 'fmp4');
    return Promise.all(
      files.map(async (file) => {
        const index = await indexRecording(file);
        return { uri: uriOf(file.id), wallClock: file.start.getTime(), initSize: index.initSize, fragments: index.fragments };
      }),
    );
  }

  private async file(id: string): Promise<RecordingFile> {
    const file = await findRecording(this.storageDir, id);
    if (!file)
      throw new ApiError(
        404,
        'recording_not_found',
        `no recording ${JSON.stringify(id)}; ids are <app>/<key>/<file> as listed by GET ${PREFIX}`,
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

  async remove(ctx: RouterContext, id: string): Promise<void> {
    const file = await this.file(id);
    // A file whose segment has just ended is still being written out and synced: it is deleted once it is
    // whole and closed, not under the recorder (which would then announce a file that is gone).
    await this.writing.finishing(file.path);
    if (this.writing.filesInUse().has(file.path))
      throw new ApiError(409, 'recording_in_progress', `${file.id} is being written; it can be deleted once its segment ends`);
    try {
      await unlink(file.path);
    } catch {
      throw new ApiError(404, 'recording_not_found', `no recording ${file.id}`);
    }
    ctx.status = 204;
  }
}

/** A recording's paths, for the three forms its id takes. */
const RECORDING_PATHS = ['/:id', '/:app/:key/:name', '/:pod/:app/:key/:name'].map((id) => `${PREFIX}${id}`);
const PLAYLIST = 'application/vnd.apple.mpegurl';

/** A recording download's answers, here and on the pod that holds it (fleet/routes.ts). */
export const DOWNLOAD_ANSWERS = {
  ok: {
    200: { description: 'The file', media: ['video/mp4', 'video/x-flv'] },
    206: { description: 'The byte range asked for', media: ['video/mp4', 'video/x-flv'] },
  },
  errors: { 404: ['recording_not_found'], 416: ['range_not_satisfiable'] },
} as const;

/**
 * The recordings under --storage-dir: list (by stream and time range,
 * paginated), download with range requests, delete, and a VOD HLS playlist
 * over a stream's fMP4 recordings. A recording id is `<app>/<key>/<file>`
 * (URL-encoded as one path segment, or as three); nothing outside the
 * storage directory can be named. In a fleet every live pod's recordings are
 * listed, with ids `<pod>/<app>/<key>/<file>` (one segment or four), and a
 * recording held by another pod is served and deleted through it.
 */
export const RECORDING_ROUTES = {
  list: {
    method: 'get',
    paths: [PREFIX],
    summary: 'The recordings, by stream and time range, a page at a time',
    access: 'read',
    query: listQuery,
    ok: { 200: { description: 'A page of recordings', json: recordingListSchema } },
  },
  // Before the downloads: /playlist.m3u8 would be a recording id too.
  playlist: {
    method: 'get',
    paths: [`${PREFIX}/playlist.m3u8`],
    summary: "A VOD HLS playlist over one stream's fMP4 recordings",
    access: 'read',
    query: recordingSelection,
    ok: { 200: { description: 'The playlist', media: [PLAYLIST] } },
    errors: { 404: ['not_found'] },
  },
  download: {
    method: 'get',
    paths: RECORDING_PATHS,
    summary: 'Download a recording (HTTP range requests too)',
    access: 'read',
    query: noQuery,
    ...DOWNLOAD_ANSWERS,
  },
  remove: {
    method: 'delete',
    paths: RECORDING_PATHS,
    summary: 'Delete a recording',
    access: 'token',
    query: noQuery,
    ok: { 204: { description: 'Deleted', empty: true } },
    errors: { 404: ['recording_not_found'], 409: ['recording_in_progress'] },
  },
} satisfies RouteGroup;

export function recordingsApi({ store, fleet }: RecordingsApiOptions): Router {
  const list = async (ctx: RouterContext, query: RecordingListQuery) => {
    if (fleet) {
      ctx.body = await fleet.list(query);
      return;
    }
    let files = await store.select(query);
    if (query.page_token) {
      const after = Buffer.from(query.page_token, 'base64url').toString();
      const at = files.findIndex((f) => f.id === after);
      files = at >= 0 ? files.slice(at + 1) : files.filter((f) => f.id > after);
    }
    const page = files.slice(0, query.limit);
    const recordings = await store.views(page);
    const more = files.length > page.length;
    const answer: z.infer<typeof recordingListSchema> = {
      recordings,
      next_page_token: more ? Buffer.from(page.at(-1)!.id).toString('base64url') : null,
    };
    ctx.body = answer;
  };

  const playlist = async (ctx: RouterContext, query: RecordingSelection) => {
    if (!query.stream_id && (!query.app || !query.key))
      throw new ApiError(400, 'bad_request', 'a VOD playlist is of one stream: give stream_id');
    const vod = fleet ? await fleet.vod(query) : await store.vod(query, encodeURIComponent);
    if (vod.length === 0) throw new ApiError(404, 'not_found', 'no fMP4 recording of this stream in that time range');
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = PLAYLIST;
    ctx.body = renderVodPlaylist(vod, {
      ...(query.start !== undefined && { from: query.start }),
      ...(query.end !== undefined && { to: query.end }),
    });
  };

  /** Runs `action` on this pod's recording, or has the pod that holds it answer. */
  const held = (action: (ctx: RouterContext, id: string) => Promise<void>) => async (ctx: RouterContext) => {
    const params = ctx.params as Record<string, string | undefined>;
    const id = params.id ?? [params.pod, params.app, params.key, params.name].filter((p) => p !== undefined).join('/');
    const parts = id.split('/');
    if (!fleet || parts.length !== 4) return action(ctx, id);
    const local = parts.slice(1).join('/');
    return parts[0] === fleet.pod ? action(ctx, local) : fleet.forward(ctx, parts[0]!, local);
  };
  return routerFor(RECORDING_ROUTES, {
    list,
    playlist,
    download: held((ctx, id) => store.download(ctx, id)),
    remove: held((ctx, id) => store.remove(ctx, id)),
  });
}

async function view(file: RecordingFile, writing: boolean): Promise<RecordingView> {
  const { duration } = await indexRecording(file).catch(() => ({ duration: 0 }));
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
