import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorizer.ts';
import { hasApiToken } from '../auth/http-access.ts';
import type { HlsServer } from '../hls/server.ts';
import type { BitrateMeter } from '../hub/bitrate.ts';
import type { StreamHub } from '../hub/hub.ts';
import { invalidStreamName, streamId } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import { SnapshotError, type SnapshotErrorCode, type SnapshotService } from '../snapshot/service.ts';
import type { Recorder } from '../storage/recorder.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber } from './query.ts';
import type { Router } from './required-modules.ts';
import { abortedBy, routerFor, type Route, type RouteGroup } from './routing.ts';
import { streamView, streamViewSchema, type StreamView, type StreamViewSources } from './stream-view.ts';

export interface StreamsApiOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** Kicks publishers (DELETE); the route itself is token-protected by auth/http-access.ts. */
  authorizer: Authorizer;
  hls?: HlsServer | undefined;
  recorder?: Recorder | undefined;
  /** Adds each stream's forwards. */
  forwards?: StreamViewSources['forwards'];
  /** Adds each stream's transcode, and a rendition's source. */
  transcodes?: StreamViewSources['transcodes'];
  /** In a fleet: the streams of every pod, and snapshots of streams live elsewhere (fleet/catalog.ts). */
  fleet?: FleetStreams;
}

/** A snapshot answered by another pod, passed on as it came. */
export interface ForwardedAnswer {
  status: number;
  type: string;
  body: Buffer;
  headers: Record<string, string>;
}

export interface FleetStreams {
  /** Every live stream of the fleet, each with the pod that owns it (publisher addresses included). */
  list(): Promise<StreamView[]>;
  /** The snapshot of a stream from the pod that owns it; undefined when no pod does. */
  snapshot(app: string, key: string, signal: AbortSignal): Promise<ForwardedAnswer | undefined>;
}

const STREAM_ID = /^rtmp\/[^/]+\/[^/]+$/;
const encodedParams = z.object({
  stream_id: z
    .string()
    .regex(STREAM_ID, 'expected rtmp/<app>/<key>, URL-encoded: rtmp%2Flive%2Ftest123')
    .describe('rtmp/<app>/<key>, URL-encoded as one path segment (rtmp%2Flive%2Ftest123)'),
});
const decodedParams = z.object({ app: z.string().min(1), key: z.string().min(1) });
/** The longest ban a kick may ask for: 30 days. */
const MAX_BAN_SECONDS = 30 * 86_400;
const banQuery = z.object({
  ban_seconds: wholeNumber(1, MAX_BAN_SECONDS)
    .optional()
    .describe('also revoke the stream key this many seconds; without it the publisher may come back at once'),
});

/** GET /api/v1/rtmp/streams. */
export const streamListSchema = z.object({ streams: z.array(streamViewSchema) });
/** DELETE of a stream: the publisher kicked, and until when its key stays revoked (null: not revoked). */
export const kickAnswerSchema = z.object({ kicked: z.string(), revoked_until: z.iso.datetime().nullable() });

/** The status sendSnapshot answers each snapshot error with. */
const SNAPSHOT_STATUS: Record<SnapshotErrorCode, number> = {
  snapshots_disabled: 409,
  no_video: 404,
  no_keyframe: 404,
  unsupported_codec: 415,
  picture_too_large: 422,
  busy: 503,
  decode_failed: 503,
};

/** The errors of both snapshot routes (this API's and the fleet's) but a malformed name: no such stream here, or sendSnapshot's. */
export const SNAPSHOT_ERRORS = Object.entries(SNAPSHOT_STATUS).reduce<Record<number, string[]>>(
  (errors, [code, status]) => ({ ...errors, [status]: [...(errors[status] ?? []), code] }),
  { 404: ['stream_not_found'] },
);

const STREAMS = '/api/v1/rtmp/streams';
/** A stream's paths under `prefix` (and `suffix`), for both forms its id takes. */
export const byStreamId = (prefix: string, suffix = ''): string[] => [`${prefix}/:stream_id${suffix}`, `${prefix}/rtmp/:app/:key${suffix}`];
export const STREAM_ID_PARAMS = { stream_id: encodedParams.shape.stream_id };
const ONE_STREAM = { paths: byStreamId(STREAMS), params: STREAM_ID_PARAMS } satisfies Partial<Route>;

/**
 * The original flux-rtmpd API under /api/v1/rtmp. A stream id is
 * `rtmp/<app>/<key>`, URL-encoded as one path segment
 * (`rtmp%2Flive%2Ftest123`); the unencoded form works too, since clients
 * and proxies that decode %2F are common.
 */
export const STREAM_ROUTES = {
  list: {
    method: 'get',
    paths: [STREAMS],
    summary: 'The live streams (in a fleet, of every pod); publisher addresses only to a caller with an API token',
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The streams', json: streamListSchema } },
  },
  one: {
    ...ONE_STREAM,
    method: 'get',
    summary: 'One live stream; its publisher address only to a caller with an API token',
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The stream', json: streamViewSchema } },
    errors: { 400: ['invalid_stream_id'], 404: ['stream_not_found'] },
  },
  kick: {
    ...ONE_STREAM,
    method: 'delete',
    summary: 'Kick the publisher, and revoke its key for ban_seconds',
    access: 'token',
    query: banQuery,
    ok: { 200: { description: 'Kicked', json: kickAnswerSchema } },
    errors: { 400: ['invalid_stream_id'], 404: ['stream_not_found'], 409: ['not_owner'] },
  },
  snapshot: {
    method: 'get',
    paths: byStreamId(STREAMS, '/snapshot'),
    params: STREAM_ID_PARAMS,
    summary: "Snapshot: a JPEG of the stream's last keyframe",
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The JPEG', media: ['image/jpeg'] } },
    errors: { 400: ['invalid_stream_id'], ...SNAPSHOT_ERRORS },
  },
} satisfies RouteGroup;

export function streamsApi({ hub, snapshots, bitrate, authorizer, hls, recorder, forwards, transcodes, fleet }: StreamsApiOptions): Router {
  const notLive = (id: string) =>
    new ApiError(
      404,
      'stream_not_found',
      `stream ${id} is not live; check that the publisher is connected and that the id is rtmp/<app>/<key>, URL-encoded (rtmp%2Flive%2Ftest123)`,
    );

  const find = (params: unknown): Stream => {
    const id = streamIdOf(params);
    const stream = hub.byId(id);
    if (!stream) throw notLive(id);
    return stream;
  };

  // Publisher addresses are personal data: shown only to a caller with an API token.
  const list = async (ctx: RouterContext): Promise<StreamView[]> => {
    const shown = hasApiToken(ctx);
    if (!fleet) return hub.list().map((stream) => streamView(stream, bitrate.kbps(stream), shown, { hls, recorder, forwards, transcodes }));
    const views = await fleet.list();
    return shown ? views : views.map((v) => ({ ...v, publisher: { ...v.publisher, remote_address: null } }));
  };

  const one = async (ctx: RouterContext) => {
    const id = streamIdOf(ctx.params);
    const view = (await list(ctx)).find((v) => v.stream_id === id);
    if (!view) throw notLive(id);
    ctx.body = view;
  };

  const kick = (ctx: RouterContext, { ban_seconds: banSeconds }: z.infer<typeof banQuery>) => {
    const stream = find(ctx.params);
    if (stream.publisher.protocol === 'relay')
      throw new ApiError(
        409,
        'not_owner',
        `stream ${stream.id} is published on another pod of the fleet (owner.pod in its view); send this request to that pod`,
      );
    authorizer.kick(stream, banSeconds);
    const answer: z.infer<typeof kickAnswerSchema> = {
      kicked: stream.id,
      revoked_until: banSeconds === undefined ? null : new Date(Date.now() + banSeconds * 1000).toISOString(),
    };
    ctx.body = answer;
  };

  const snapshot = async (ctx: RouterContext) => {
    const id = streamIdOf(ctx.params);
    const stream = hub.byId(id);
    if (stream) return sendSnapshot(ctx, snapshots, stream);
    const [, app = '', key = ''] = id.split('/');
    const forwarded = await fleet?.snapshot(app, key, abortedBy(ctx));
    if (!forwarded) throw notLive(id);
    ctx.status = forwarded.status;
    ctx.set(forwarded.headers);
    ctx.type = forwarded.type;
    ctx.body = forwarded.body;
  };

  return routerFor(STREAM_ROUTES, {
    list: async (ctx) => {
      const answer: z.infer<typeof streamListSchema> = { streams: await list(ctx) };
      ctx.body = answer;
    },
    one,
    kick,
    snapshot,
  });
}

/** Answers with the JPEG of a stream's last keyframe, or the snapshot error as JSON. */
export async function sendSnapshot(ctx: RouterContext, snapshots: SnapshotService, stream: Stream): Promise<void> {
  try {
    const { jpeg } = await snapshots.get(stream);
    ctx.type = 'image/jpeg';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = jpeg;
  } catch (err) {
    if (!(err instanceof SnapshotError)) throw err;
    throw new ApiError(SNAPSHOT_STATUS[err.code], err.code, err.message, err.code === 'busy' ? { 'Retry-After': '1' } : {});
  }
}

/**
 * A stream id from route params, either `:stream_id` (URL-encoded) or
 * `rtmp/:app/:key`. A malformed one, or one naming a stream that could never
 * be published (hub/names.ts), is a 400 that says why, not a 404 "not live".
 */
export function streamIdOf(params: unknown): string {
  const { app, key } = appAndKeyOf(params);
  const invalid = invalidStreamName(app, key);
  if (invalid) throw new ApiError(400, 'invalid_stream_id', invalid);
  return streamId(app, key);
}

function appAndKeyOf(params: unknown): { app: string; key: string } {
  const encoded = encodedParams.safeParse(params);
  if (encoded.success) {
    const [, app = '', key = ''] = encoded.data.stream_id.split('/');
    return { app, key };
  }
  const decoded = decodedParams.safeParse(params);
  if (decoded.success) return decoded.data;
  throw new ApiError(400, 'invalid_stream_id', encoded.error.issues[0]?.message ?? 'invalid stream id');
}
