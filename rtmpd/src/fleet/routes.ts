// What pods of a fleet ask each other, under /fleet/v1 on the HTTP port, with
// the fleet's own bearer token (never an end user's): this pod's streams for
// the fleet-wide list, a stream this pod owns as HTTP-FLV for a relay, a
// snapshot of a stream this pod has, the recordings on this pod's volume, and
// a rendition this pod's transcode makes once it is published (for another
// pod's master.m3u8). Only what is live here is answered, so a request never
// bounces on to a third pod.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RouterContext } from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { BitrateMeter } from '../hub/bitrate.ts';
import type { StreamHub } from '../hub/hub.ts';
import { invalidStreamName, streamId } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import { ApiError, unauthorized } from '../http/errors.ts';
import { FlvResponse } from '../http/http-flv.ts';
import { SocketIo } from '../rtmp/io/socket-io.ts';
import type { Router } from '../http/required-modules.ts';
import { abortedBy, routerFor, type RouteGroup } from '../http/routing.ts';
import { streamView, type StreamViewSources } from '../http/stream-view.ts';
import type { RecordingStore } from '../http/recording-store.ts';
import { DOWNLOAD_ANSWERS, recordingSelection } from '../http/recordings-api.ts';
import { noQuery, wholeNumber } from '../http/query.ts';
import { sendSnapshot, SNAPSHOT_ERRORS } from '../http/streams-api.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import type { Transcodes } from '../transcode/transcodes.ts';
import { podPageQuery, podRecordingPage, podRecordings, podVod, podVodFiles } from './recordings.ts';
import { FLEET_PREFIX, podStreamsSchema, RELAY_PATH, type PodStreams } from './wire.ts';

export interface FleetRoutesOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** What the stream views add from HLS and the recorder. */
  sources: StreamViewSources;
  recordings: RecordingStore;
  /** Waits for a rendition this pod's transcode makes, for another pod's master.m3u8 (never asking a third pod). */
  renditionPublished: Transcodes['renditionPublished'];
  pod: string;
  token: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compares in constant time (both sides hashed first, so lengths do not leak either). */
export function sameToken(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** This pod's live streams, as the fleet-wide list merges them. */
export function podStreams(o: Pick<FleetRoutesOptions, 'hub' | 'bitrate' | 'sources' | 'pod'>): PodStreams {
  return {
    pod: o.pod,
    streams: o.hub.list().map((s) => ({
      view: streamView(s, o.bitrate.kbps(s), true, o.sources),
      relayed: s.publisher.protocol === 'relay',
    })),
  };
}

function streamName(ctx: RouterContext): { app: string; key: string } {
  const app = ctx.params.app ?? '';
  const key = ctx.params.key ?? '';
  const invalid = invalidStreamName(app, key);
  if (invalid) throw new ApiError(400, 'invalid_stream_name', invalid);
  return { app, key };
}

const recordingId = (ctx: RouterContext): string => `${ctx.params.app}/${ctx.params.key}/${ctx.params.name}`;

const FLEET = 'fleet (pod to pod)';
const POD_RECORDING = `${FLEET_PREFIX}/recordings/:app/:key/:name`;

/** What pods of the fleet ask each other; the OpenAPI document shows them as internal. */
export const FLEET_ROUTES = {
  streams: {
    method: 'get',
    paths: [`${FLEET_PREFIX}/streams`],
    summary: "This pod's live streams, for the fleet-wide list",
    access: 'fleet',
    query: noQuery,
    ok: { 200: { description: "The pod's streams", json: podStreamsSchema } },
    internal: FLEET,
  },
  relay: {
    method: 'get',
    paths: [`${RELAY_PATH}/:app/:key.flv`],
    summary: 'A stream this pod owns, as HTTP-FLV, for another pod to relay',
    access: 'fleet',
    query: noQuery,
    ok: { 200: { description: 'The FLV stream', media: ['video/x-flv'] } },
    errors: { 400: ['invalid_stream_name'], 404: ['stream_not_found'] },
    internal: FLEET,
  },
  snapshot: {
    method: 'get',
    paths: [`${FLEET_PREFIX}/snapshot/:app/:key`],
    summary: 'The snapshot of a stream this pod has',
    access: 'fleet',
    query: noQuery,
    ok: { 200: { description: 'The JPEG', media: ['image/jpeg'] } },
    errors: { 400: ['invalid_stream_name'], ...SNAPSHOT_ERRORS },
    internal: FLEET,
  },
  rendition: {
    method: 'get',
    paths: [`${FLEET_PREFIX}/renditions/:app/:key`],
    summary:
      "A rendition this pod's transcode makes, answered once it is published here or not coming (its ffmpeg failed), for another pod's master.m3u8",
    access: 'fleet',
    query: z.object({ wait_ms: wholeNumber(0, 60_000).describe('how long to wait for its publish') }),
    ok: { 204: { description: 'Published here', empty: true } },
    errors: { 400: ['invalid_stream_name'], 404: ['stream_not_found'] },
    internal: FLEET,
  },
  recordings: {
    method: 'get',
    paths: [`${FLEET_PREFIX}/recordings`],
    summary: "A page of this pod's recordings, for the fleet-wide list",
    access: 'fleet',
    query: recordingSelection.extend(podPageQuery.shape),
    ok: { 200: { description: 'A page', json: podRecordingPage } },
    internal: FLEET,
  },
  vod: {
    method: 'get',
    paths: [`${FLEET_PREFIX}/recordings/vod`],
    summary: "A stream's fMP4 recordings on this pod, for a fleet-wide VOD playlist",
    access: 'fleet',
    query: recordingSelection,
    ok: { 200: { description: 'The files and their fragments', json: podVodFiles } },
    internal: FLEET,
  },
  download: {
    method: 'get',
    paths: [POD_RECORDING],
    summary: 'Download a recording on this pod (HTTP range requests too)',
    access: 'fleet',
    query: noQuery,
    ...DOWNLOAD_ANSWERS,
    internal: FLEET,
  },
  remove: {
    method: 'delete',
    paths: [POD_RECORDING],
    summary: 'Delete a recording on this pod',
    access: 'fleet',
    query: noQuery,
    ok: { 204: { description: 'Deleted', empty: true } },
    errors: { 404: ['recording_not_found'], 409: ['recording_in_progress'] },
    internal: FLEET,
  },
} satisfies RouteGroup;

export function fleetRoutes(o: FleetRoutesOptions): Router {
  // A stream has one relay per pod that pulls it, too few to merge: each tick's tags leave at its end.
  const relayIo = new SocketIo();
  const expected = `Bearer ${o.token}`;
  const podsOnly = async (ctx: Context, next: Next) => {
    if (!sameToken(ctx.get('authorization'), expected)) {
      throw unauthorized('fleet_token_required', 'this path is for the pods of the fleet and needs their token', {
        realm: 'rtmpd-fleet',
        invalidToken: ctx.get('authorization') !== '',
      });
    }
    await next();
  };

  /** A stream this pod has: its publisher's (`owned`) or a relay's too. */
  const local = (ctx: RouterContext, owned: boolean): Stream => {
    const { app, key } = streamName(ctx);
    const stream = o.hub.get(app, key);
    if (!stream || (owned && stream.publisher.protocol === 'relay'))
      throw new ApiError(404, 'stream_not_found', `stream ${streamId(app, key)} is not published on pod ${o.pod}`);
    return stream;
  };

  const relay = (ctx: RouterContext) => {
    const stream = local(ctx, true);
    const relay = new FlvResponse(ctx.res, relayIo, 'relay');
    ctx.res.once('close', () => stream.unsubscribe(relay));
    stream.subscribe(relay, performance.now());
    // The response belongs to the relay subscriber now.
    ctx.respond = false;
  };

  return routerFor(
    FLEET_ROUTES,
    {
      streams: (ctx) => {
        ctx.body = podStreams(o);
      },
      relay,
      snapshot: (ctx) => sendSnapshot(ctx, o.snapshots, local(ctx, false)),
      rendition: async (ctx, { wait_ms: waitMs }) => {
        const { app, key } = streamName(ctx);
        await o.renditionPublished(app, key, waitMs, abortedBy(ctx));
        local(ctx, true);
        ctx.status = 204;
      },
      recordings: async (ctx, query) => {
        ctx.body = await podRecordings(o.recordings, o.pod, query, abortedBy(ctx));
      },
      vod: async (ctx, query) => {
        ctx.body = { files: await podVod(o.recordings, o.pod, query, abortedBy(ctx)) };
      },
      download: (ctx) => o.recordings.download(ctx, recordingId(ctx)),
      remove: (ctx) => o.recordings.remove(ctx, recordingId(ctx), abortedBy(ctx)),
    },
    podsOnly,
  );
}
