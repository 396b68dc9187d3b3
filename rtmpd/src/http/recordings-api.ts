import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import { renderVodPlaylist, type VodFile } from '../hls/vod-playlist.ts';
import { parseRecordingId } from '../storage/catalog.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber } from './query.ts';
import { RECORDINGS_PREFIX as PREFIX, type RecordingStore } from './recording-store.ts';
import type { Router } from './required-modules.ts';
import { abortedBy, routerFor, type RouteGroup } from './routing.ts';

export interface RecordingsApiOptions {
  store: RecordingStore;
  /** In a fleet: the recordings of every pod (fleet/recordings.ts). */
  fleet?: FleetRecordings;
}

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
    .describe('in a fleet: pods (with a pod Lease) that did not answer, whose recordings are missing from the list'),
});
export type FleetRecordingList = Required<z.infer<typeof recordingListSchema>>;

export interface FleetRecordings {
  /** This pod's name, the first part of the ids of its recordings. */
  pod: string;
  /** A page of every pod's recordings, ids qualified by the pod that holds them; `signal`: the client left. */
  list(query: RecordingListQuery, signal?: AbortSignal): Promise<FleetRecordingList>;
  /** The fMP4 files of a stream on every pod, in time order; `signal`: the client left. */
  vod(query: RecordingSelection, signal?: AbortSignal): Promise<VodFile[]>;
  /** Serves a download or delete of `id` (`<app>/<key>/<file>`) from `pod`, which holds it. */
  forward(ctx: RouterContext, pod: string, id: string): Promise<void>;
}

// Only RFC 3339 with its offset: Date.parse alone took `5` as the year 2001,
// and a time without an offset in the server's time zone. Its UTC year stays
// in four digits too, as the other pods of a fleet are asked with it.
const TIME_ERROR = 'expected an RFC 3339 time such as 2026-11-24T07:30:00Z';
const [EARLIEST, LATEST] = [Date.parse('0000-01-01T00:00:00Z'), Date.parse('9999-12-31T23:59:59.999Z')];
const time = z.iso
  .datetime({ offset: true, error: TIME_ERROR })
  .transform((v) => Date.parse(v))
  .refine((ms) => ms >= EARLIEST && ms <= LATEST, TIME_ERROR);

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

// A prefault, not a default: zod leaves the default of a preprocessed value out of the OpenAPI document.
const pageLimit = wholeNumber(1, 1000).prefault(100);
const listQuery = recordingSelection.extend({
  limit: pageLimit.describe('recordings per page'),
  page_token: z.string().max(1024).optional().describe('the next_page_token of the page before'),
});
export type RecordingListQuery = z.infer<typeof listQuery>;

/**
 * The recording id a page_token names: `<app>/<key>/<file>`, or in a fleet
 * `<pod>/<app>/<key>/<file>`. A token no page gave out is a 400: it would
 * otherwise list from wherever its bytes sort, often nothing, with a 200.
 */
export function pageTokenId(token: string, inFleet: boolean): string {
  const id = Buffer.from(token, 'base64url').toString();
  const slash = id.indexOf('/');
  const recordingId = inFleet ? id.slice(slash + 1) : id;
  if ((inFleet && slash <= 0) || !parseRecordingId(recordingId))
    throw new ApiError(
      400,
      'bad_request',
      'query parameter "page_token": not one this server gave out (pass next_page_token back as it came)',
    );
  return id;
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
 * storage directory can be named. In a fleet every pod's recordings are
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
  // A client that leaves while its recordings are indexed drops the files still waiting (recording-index.ts).
  const list = async (ctx: RouterContext, query: RecordingListQuery) => {
    const signal = abortedBy(ctx);
    if (fleet) {
      ctx.body = await fleet.list(query, signal);
      return;
    }
    let files = await store.select(query);
    if (query.page_token) {
      const after = pageTokenId(query.page_token, false);
      const at = files.findIndex((f) => f.id === after);
      files = at >= 0 ? files.slice(at + 1) : files.filter((f) => f.id > after);
    }
    const page = files.slice(0, query.limit);
    const recordings = await store.views(page, signal);
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
    const signal = abortedBy(ctx);
    const vod = fleet ? await fleet.vod(query, signal) : await store.vod(query, encodeURIComponent, signal);
    if (vod.length === 0) throw new ApiError(404, 'not_found', 'no fMP4 recording of this stream in that time range');
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = PLAYLIST;
    ctx.body = renderVodPlaylist(vod, { from: query.start, to: query.end });
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
    remove: held((ctx, id) => store.remove(ctx, id, abortedBy(ctx))),
  });
}
