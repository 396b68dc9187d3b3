import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import { renderVodPlaylist } from '../hls/vod-playlist.ts';
import { invalidStreamName } from '../hub/names.ts';
import { findRecording, listRecordings, type RecordingFile } from '../storage/catalog.ts';
import { indexRecording } from '../storage/recording-index.ts';
import { ApiError } from './errors.ts';
import { Router } from './required-modules.ts';

export interface RecordingsApiOptions {
  storageDir: string;
  /** Paths of the files being written now. */
  inUse: () => ReadonlySet<string>;
}

const PREFIX = '/api/v1/rtmp/recordings';

/** A recording as the API shows it. */
export interface RecordingView {
  id: string;
  stream_id: string;
  app: string;
  key: string;
  format: 'fmp4' | 'flv';
  start_time: string;
  end_time: string;
  duration_seconds: number;
  size_bytes: number;
  /** Still being written. */
  recording: boolean;
  /** Download (with HTTP range requests). */
  url: string;
}

const time = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), 'expected an RFC 3339 time such as 2026-11-24T07:30:00Z')
  .transform((v) => Date.parse(v));

const selection = z.object({
  stream_id: z
    .string()
    .regex(/^rtmp\/[^/]+\/[^/]+$/, 'expected rtmp/<app>/<key>')
    .optional(),
  app: z.string().optional(),
  key: z.string().optional(),
  start: time.optional(),
  end: time.optional(),
});

const listQuery = selection.extend({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  page_token: z.string().max(1024).optional(),
});

const urlOf = (id: string): string => `${PREFIX}/${encodeURIComponent(id)}`;

/**
 * The recordings under --storage-dir: list (by stream and time range,
 * paginated), download with range requests, delete, and a VOD HLS playlist
 * over a stream's fMP4 recordings. A recording id is `<app>/<key>/<file>`
 * (URL-encoded as one path segment, or as three); nothing outside the
 * storage directory can be named.
 */
export function recordingsApi({ storageDir, inUse }: RecordingsApiOptions): Router {
  const router = new Router({ prefix: PREFIX });

  const select = async (query: z.infer<typeof selection>): Promise<RecordingFile[]> => {
    let [app, key] = [query.app, query.key];
    if (query.stream_id) [, app, key] = query.stream_id.split('/');
    for (const [what, value] of [
      ['app', app],
      ['key', key],
    ] as const) {
      if (value !== undefined && invalidStreamName(what === 'app' ? value : 'a', what === 'key' ? value : 'a'))
        throw new ApiError(400, 'bad_request', `invalid ${what} "${value}"`);
    }
    const files = (await listRecordings(storageDir)).filter(
      (f) => (app === undefined || f.app === app) && (key === undefined || f.key === key),
    );
    // A file ends where the stream's next one starts; the last one at its last write.
    const next = new Map<string, number>();
    const ends = new Map<RecordingFile, number>();
    for (const f of [...files].reverse()) {
      const stream = `${f.app}/${f.key}`;
      ends.set(f, next.get(stream) ?? f.modified.getTime());
      next.set(stream, f.start.getTime());
    }
    return files.filter(
      (f) => (query.end === undefined || f.start.getTime() <= query.end) && (query.start === undefined || ends.get(f)! > query.start),
    );
  };

  router.get('/', async (ctx) => {
    const query = parse(listQuery, ctx.query);
    let files = await select(query);
    if (query.page_token) {
      const after = Buffer.from(query.page_token, 'base64url').toString();
      const at = files.findIndex((f) => f.id === after);
      files = at >= 0 ? files.slice(at + 1) : files.filter((f) => f.id > after);
    }
    const page = files.slice(0, query.limit);
    const writing = inUse();
    const recordings = await Promise.all(page.map((file) => view(file, writing.has(file.path))));
    const more = files.length > page.length;
    ctx.body = { recordings, next_page_token: more ? Buffer.from(page.at(-1)!.id).toString('base64url') : null };
  });

  router.get('/playlist.m3u8', async (ctx) => {
    const query = parse(selection, ctx.query);
    if (!query.stream_id && (!query.app || !query.key))
      throw new ApiError(400, 'bad_request', 'a VOD playlist is of one stream: give stream_id');
    const files = (await select(query)).filter((f) => f.format === 'fmp4');
    if (files.length === 0) throw new ApiError(404, 'not_found', 'no fMP4 recording of this stream in that time range');
    const vod = await Promise.all(
      files.map(async (file) => {
        const index = await indexRecording(file);
        return { uri: encodeURIComponent(file.id), wallClock: file.start.getTime(), initSize: index.initSize, fragments: index.fragments };
      }),
    );
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'application/vnd.apple.mpegurl';
    ctx.body = renderVodPlaylist(vod, {
      ...(query.start !== undefined && { from: query.start }),
      ...(query.end !== undefined && { to: query.end }),
    });
  });

  const fileOf = async (ctx: RouterContext): Promise<RecordingFile> => {
    const params = ctx.params as Record<string, string | undefined>;
    const id = params.id ?? `${params.app}/${params.key}/${params.name}`;
    const file = await findRecording(storageDir, id);
    if (!file)
      throw new ApiError(
        404,
        'recording_not_found',
        `no recording ${JSON.stringify(id)}; ids are <app>/<key>/<file> as listed by GET ${PREFIX}`,
      );
    return file;
  };

  const download = async (ctx: RouterContext) => {
    const file = await fileOf(ctx);
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
    ctx.body = file.size === 0 ? '' : createReadStream(file.path, { start, end });
  };

  const remove = async (ctx: RouterContext) => {
    const file = await fileOf(ctx);
    if (inUse().has(file.path))
      throw new ApiError(409, 'recording_in_progress', `${file.id} is being written; it can be deleted once its segment ends`);
    try {
      await unlink(file.path);
    } catch {
      throw new ApiError(404, 'recording_not_found', `no recording ${file.id}`);
    }
    ctx.status = 204;
  };

  router.get('/:id', download);
  router.get('/:app/:key/:name', download);
  router.delete('/:id', remove);
  router.delete('/:app/:key/:name', remove);
  return router;
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
    url: urlOf(file.id),
  };
}

function parse<S extends z.ZodType>(schema: S, query: unknown): z.infer<S> {
  const result = schema.safeParse(query);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ApiError(400, 'bad_request', `${issue?.path.join('.') || 'query'}: ${issue?.message}`);
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
