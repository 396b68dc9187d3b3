import type { RouterContext } from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { invalidStreamName, RESERVED_APPS, streamId } from '../hub/names.ts';
import type { HlsMuxer } from '../hls/muxer.ts';
import { renderMultivariant, type Variant } from '../hls/multivariant.ts';
import type { HlsRefusal, HlsServer } from '../hls/server.ts';
import type { RenditionInfo } from '../transcode/transcodes.ts';
import { ApiError } from './errors.ts';
import { noQuery, wholeNumber } from './query.ts';
import type { Router } from './required-modules.ts';
import { abortedBy, routerFor, type Handlers, type RouteGroup } from './routing.ts';

export interface HlsRoutesOptions {
  hls: HlsServer;
  /** Puts a playlist request through the play rules (auth/http-access.ts); throws ApiError when refused. */
  authorizePlay?: (ctx: Context, app: string, key: string, signal: AbortSignal) => Promise<{ release(): void } | undefined>;
  /** The renditions transcodeRules make of a stream, for its multivariant playlist. */
  ladderOf?: (app: string, key: string) => readonly RenditionInfo[];
  /** Resolves once a rendition is live here or is not coming (its transcode failed or was refused), within `waitMs`. */
  renditionArrival?: (app: string, key: string, waitMs: number, signal: AbortSignal) => Promise<void>;
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const MEDIA_TYPE = 'video/mp4';
const TS_MEDIA_TYPE = 'video/mp2t';
/** Media URIs carry the muxer's instance, so their bytes never change: caches keep them for good. */
const MEDIA_CACHE = 'public, max-age=31536000, immutable';
/** A live playlist changes with every segment (or part). */
const PLAYLIST_CACHE = 'no-cache';

const MEDIA_FILE = /^(init|seg|part)-([0-9a-f]{16})-(\d{1,9})(?:-(\d{1,6}))?\.(?:mp4|m4s|ts)$/;

const blockingQuery = z.object({
  _HLS_msn: wholeNumber(0, 1e9).optional().describe('blocking reload: answer once this media sequence number is in the playlist (LL-HLS)'),
  _HLS_part: wholeNumber(0, 1e6).optional().describe('with _HLS_msn: once this part of that segment is'),
});

const REFUSALS: Record<HlsRefusal, [number, string]> = {
  not_live: [404, 'is not live; check that the publisher is connected'],
  hls_disabled: [404, 'is not served over HLS (--hls-enabled, hlsRules)'],
  unsupported_codec: [415, 'has no track HLS (fMP4) can carry: H.264, HEVC or AV1 video, AAC, Opus or MP3 audio'],
  hls_capacity: [503, 'cannot start HLS now: the HLS memory of all streams is at --hls-max-total-bytes'],
};

/**
 * HLS at `/<app>/<key>/index.m3u8` and the media it lists (init sections,
 * segments, LL-HLS parts) next to it. Any origin may read them (CORS), so
 * hls.js on another site plays them. Playlist requests go through the play
 * rules; the media URIs they list carry the segmenter's 64-bit random
 * instance, so only a client that got a playlist can name them. Mount
 * before HTTP-FLV.
 */
export const HLS_ROUTES = {
  playlist: {
    method: 'get',
    paths: ['/:app/:key/index.m3u8'],
    summary: 'HLS (fMP4 or MPEG-TS, Low-Latency HLS when on): the live playlist; _HLS_msn/_HLS_part ask for a blocking reload',
    access: 'play',
    query: blockingQuery,
    othersIgnored: true,
    playCredentials: true,
    ok: { 200: { description: 'The playlist', media: [PLAYLIST_TYPE] } },
    errors: {
      400: ['invalid_stream_name'],
      404: ['stream_not_found', 'hls_disabled', 'not_found'],
      415: ['unsupported_codec'],
      503: ['hls_capacity', 'hls_not_ready'],
    },
  },
  // Before the media: master.m3u8 would be a file name there.
  multivariant: {
    method: 'get',
    paths: ['/:app/:key/master.m3u8'],
    summary:
      'HLS multivariant playlist: the stream and its live renditions (transcodeRules), the credentials of the query in each variant URI',
    access: 'play',
    query: noQuery,
    othersIgnored: true,
    playCredentials: true,
    ok: { 200: { description: 'The multivariant playlist', media: [PLAYLIST_TYPE] } },
    errors: {
      400: ['invalid_stream_name'],
      404: ['stream_not_found', 'hls_disabled', 'not_found'],
      415: ['unsupported_codec'],
      503: ['hls_capacity', 'hls_not_ready'],
    },
  },
  media: {
    method: 'get',
    paths: ['/:app/:key/:file'],
    summary: "HLS media a playlist lists: init sections, segments, LL-HLS parts (their names carry the playlist's random instance)",
    access: 'open',
    query: noQuery,
    othersIgnored: true,
    params: { file: z.string().regex(MEDIA_FILE) },
    ok: { 200: { description: 'The media', media: [MEDIA_TYPE, TS_MEDIA_TYPE] } },
    errors: { 400: ['invalid_stream_name'], 404: ['not_found'] },
  },
} satisfies RouteGroup;

export function hlsRoutes(options: HlsRoutesOptions): Router {
  return routerFor(HLS_ROUTES, {
    playlist: playlistRoute(options),
    multivariant: multivariantRoute(options),
    media: mediaRoute(options.hls),
  });
}

type HlsHandlers = Handlers<typeof HLS_ROUTES>;

function playlistRoute({ hls, authorizePlay }: HlsRoutesOptions): HlsHandlers['playlist'] {
  return async (ctx, { _HLS_msn: msn, _HLS_part: part }) => {
    allowAnyOrigin(ctx);
    const { app, key } = streamName(ctx);
    const signal = abortedBy(ctx);
    // HLS has no lasting session: an allowed request's lease ends with it.
    (await authorizePlay?.(ctx, app, key, signal))?.release();
    // In a fleet, a stream another pod owns is relayed here first.
    await hls.arrival(app, key, signal);
    // A client that left while it was authorized or relayed starts no segmenter.
    if (signal.aborted) return;
    const muxer = hls.muxer(app, key);
    if (typeof muxer === 'string') throw refusal(app, key, muxer);
    hls.stats.requests.playlist++;
    muxer.touch(`${ctx.ip} ${ctx.get('user-agent')}`);
    if (!(await playlistReady(muxer, msn, part, signal))) throw notReady(app, key);
    if (ctx.req.destroyed) return;
    ctx.set('Cache-Control', PLAYLIST_CACHE);
    ctx.type = PLAYLIST_TYPE;
    ctx.body = muxer.playlistText();
    countSent(ctx, muxer);
  };
}

/**
 * Waits until the playlist may be answered: it has its first segment, or, on
 * a blocking reload (_HLS_msn, _HLS_part), the segment or part asked for.
 * False when that did not come in time.
 */
async function playlistReady(muxer: HlsMuxer, msn: number | undefined, part: number | undefined, signal: AbortSignal): Promise<boolean> {
  if (msn === undefined && part === undefined) return muxer.waitUntil(() => muxer.ready, firstSegmentWaitMs(muxer), signal);
  if (!muxer.options.lowLatency) throw new ApiError(400, 'bad_request', 'blocking playlist reload (_HLS_msn) needs Low-Latency HLS');
  if (msn === undefined) throw new ApiError(400, 'bad_request', '_HLS_part needs _HLS_msn');
  if (msn > muxer.highestBlockableMsn) throw new ApiError(400, 'bad_request', `_HLS_msn ${msn} is too far ahead of the playlist`);
  // RFC 8216bis: a server that cannot answer within three target durations answers 503.
  return muxer.waitUntil(() => muxer.hasPart(msn, part), 3000 * Math.max(1, muxer.options.segmentSeconds), signal);
}

// The source and its live renditions; the request's query (its credentials) goes on to each variant.
// Players read it once (hls.js never reloads it), so it is answered as MediaMTX answers its own: once
// each variant's HLS has made its first segment, which BANDWIDTH, AVERAGE-BANDWIDTH, CODECS and
// RESOLUTION come from. A rendition whose transcode is starting (ffmpeg takes a second or more to
// publish it) is waited for too, within the same bound as the source's first segment: a player that
// opened the stream in its first seconds gets the whole ladder. The source not ready by then is a 503
// as from index.m3u8; a rendition is left out.
function multivariantRoute(options: HlsRoutesOptions): HlsHandlers['multivariant'] {
  const { hls, authorizePlay, ladderOf } = options;
  return async (ctx) => {
    allowAnyOrigin(ctx);
    const { app, key } = streamName(ctx);
    const signal = abortedBy(ctx);
    (await authorizePlay?.(ctx, app, key, signal))?.release();
    if (!hls.settings(app, key).enabled) throw refusal(app, key, 'hls_disabled');
    // In a fleet, the source is relayed here from its owner first.
    await hls.arrival(app, key, signal);
    if (signal.aborted) return;
    const source = hls.muxer(app, key);
    if (typeof source === 'string') throw refusal(app, key, source);
    const waitMs = firstSegmentWaitMs(source);
    const deadline = performance.now() + waitMs;
    const [ready, ...renditions] = await Promise.all([
      source.waitUntil(() => source.ready, waitMs, signal),
      ...(ladderOf?.(app, key) ?? []).map(({ key: name }) => readyRendition(options, app, name, deadline, signal)),
    ]);
    if (!ready) throw notReady(app, key);
    // Ready also once its stream ended.
    const { stream, bandwidth } = source;
    if (!stream || !bandwidth) throw refusal(app, key, 'not_live');
    const query = ctx.querystring ? `?${ctx.querystring}` : '';
    const variants: Variant[] = [{ stream, uri: `index.m3u8${query}`, bandwidth }];
    for (const { name, muxer } of renditions.filter((rendition) => rendition !== undefined)) {
      const rendition = muxer.stream;
      // A variant without RESOLUTION and CODECS is no help to a player.
      if (rendition?.videoTrack && muxer.bandwidth)
        variants.push({ stream: rendition, uri: `../${name}/index.m3u8${query}`, bandwidth: muxer.bandwidth });
    }
    if (ctx.req.destroyed) return;
    hls.stats.requests.playlist++;
    ctx.set('Cache-Control', PLAYLIST_CACHE);
    ctx.type = PLAYLIST_TYPE;
    ctx.body = renderMultivariant(variants);
  };
}

/** A rendition's muxer once it has made its first segment (before `deadline`); undefined without. */
async function readyRendition(
  { hls, renditionArrival }: HlsRoutesOptions,
  app: string,
  name: string,
  deadline: number,
  signal: AbortSignal,
): Promise<{ name: string; muxer: HlsMuxer } | undefined> {
  // In a fleet, a rendition another pod publishes is relayed here.
  await hls.arrival(app, name, signal);
  await renditionArrival?.(app, name, deadline - performance.now(), signal);
  if (signal.aborted) return undefined;
  const muxer = hls.muxer(app, name);
  if (typeof muxer === 'string' || !(await muxer.waitUntil(() => muxer.ready, deadline - performance.now(), signal))) return undefined;
  return { name, muxer };
}

function mediaRoute(hls: HlsServer): HlsHandlers['media'] {
  return async (ctx, _, next) => {
    const file = MEDIA_FILE.exec(ctx.params.file ?? '');
    if (!file) return next();
    allowAnyOrigin(ctx);
    const { app, key } = streamName(ctx);
    const [name, type, , first, second] = file;
    const [a, b] = [Number(first), Number(second ?? 0)];
    const muxer = hls.running(app, key);
    if (!muxer || listedName(muxer, type as MediaType, a, b) !== name) throw gone(ctx.path);
    const bytes = await mediaBytes(ctx, hls, muxer, type as MediaType, a, b);
    if (!bytes) throw gone(ctx.path);
    if (ctx.req.destroyed) return;
    muxer.lastRequestAt = performance.now();
    ctx.set('Cache-Control', MEDIA_CACHE);
    ctx.type = muxer.options.variant === 'mpegts' ? TS_MEDIA_TYPE : MEDIA_TYPE;
    ctx.body = bytes;
    countSent(ctx, muxer);
  };
}

type MediaType = 'init' | 'seg' | 'part';

/**
 * The name the muxer's playlist gives the media: its instance, its variant's
 * extension, its numbers in their one spelling. Undefined for what the
 * variant has none of: init sections in MPEG-TS, parts without Low-Latency
 * HLS. A URI in another form (a guessed `.m4s` of a TS segment) names nothing.
 */
function listedName({ names, options }: HlsMuxer, type: MediaType, a: number, b: number): string | undefined {
  if (type === 'init') return options.variant === 'fmp4' ? names.init(a) : undefined;
  if (type === 'seg') return names.segment(a);
  return options.lowLatency ? names.part(a, b) : undefined;
}

/** The init section, segment or part a media URI names (counted by its type); undefined when the muxer has it no more. */
async function mediaBytes(
  ctx: RouterContext,
  hls: HlsServer,
  muxer: HlsMuxer,
  type: MediaType,
  a: number,
  b: number,
): Promise<Buffer | undefined> {
  if (type === 'init') {
    hls.stats.requests.init++;
    return muxer.init(a);
  }
  if (type === 'seg') {
    hls.stats.requests.segment++;
    return muxer.segment(a);
  }
  hls.stats.requests.part++;
  const bytes = muxer.part(a, b);
  if (bytes || !muxer.isNextPart(a, b)) return bytes;
  // The part a preload hint names is answered as soon as it exists.
  const made = await muxer.waitUntil(() => muxer.part(a, b) !== undefined, 3000 * muxer.options.segmentSeconds, abortedBy(ctx));
  return made ? muxer.part(a, b) : undefined;
}

/** How long a first request waits for a stream's first HLS segment. */
const firstSegmentWaitMs = (muxer: HlsMuxer): number => Math.max(15_000, 4000 * muxer.options.segmentSeconds);

/** Set first, so errors (JSON) are readable from another origin too. */
const allowAnyOrigin = (ctx: RouterContext): void => void ctx.set('Access-Control-Allow-Origin', '*');

function streamName(ctx: RouterContext): { app: string; key: string } {
  const app = ctx.params.app ?? '';
  const key = ctx.params.key ?? '';
  if (RESERVED_APPS.has(app)) throw new ApiError(404, 'not_found', `no route for GET ${ctx.path}`);
  const invalid = invalidStreamName(app, key);
  if (invalid) throw new ApiError(400, 'invalid_stream_name', invalid);
  return { app, key };
}

/**
 * Counts the response's body as sent to an HLS player once all of it has
 * been handed to the socket ('finish'): not when the client leaves before
 * that, nor for a HEAD, whose body Koa does not send. The muxer counts it
 * in its stream's stats, or after the stream's end in HlsStats.
 */
function countSent(ctx: RouterContext, muxer: HlsMuxer): void {
  if (ctx.method !== 'GET') return;
  ctx.res.once('finish', () => {
    if (ctx.status === 200) muxer.countSent(ctx.length ?? 0);
  });
}

function refusal(app: string, key: string, why: HlsRefusal): ApiError {
  const [status, reason] = REFUSALS[why];
  return new ApiError(status, why === 'not_live' ? 'stream_not_found' : why, `stream ${streamId(app, key)} ${reason}`);
}

const notReady = (app: string, key: string) =>
  new ApiError(503, 'hls_not_ready', `stream ${streamId(app, key)} has no HLS segment yet; retry shortly`, { 'Retry-After': '1' });

const gone = (path: string) => new ApiError(404, 'not_found', `${path} is not (or no longer) in the playlist`);
