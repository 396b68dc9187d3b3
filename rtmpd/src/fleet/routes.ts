// What pods of a fleet ask each other, under /fleet/v1 on the HTTP port, with
// the fleet's own bearer token (never an end user's): this pod's streams for
// the fleet-wide list, a stream this pod owns as HTTP-FLV for a relay, a
// snapshot of a stream this pod has, and the recordings on this pod's volume. Only what is live here is answered, so
// a request never bounces on to a third pod.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RouterContext } from '@koa/router';
import type { Next } from 'koa';
import type { StreamHub } from '../hub/hub.ts';
import { invalidStreamName, streamId } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import type { BitrateMeter } from '../http/bitrate.ts';
import { ApiError, unauthorized } from '../http/errors.ts';
import { FlvResponse } from '../http/http-flv.ts';
import { Router } from '../http/required-modules.ts';
import { streamView, streamViewSchema, type StreamViewSources } from '../http/stream-view.ts';
import { recordingSelection, type RecordingStore } from '../http/recordings-api.ts';
import { noQuery, withQuery } from '../http/query.ts';
import { sendSnapshot } from '../http/streams-api.ts';
import { z } from 'zod';
import type { SnapshotService } from '../snapshot/service.ts';
import { podPageQuery, podRecordings, podVod } from './recordings.ts';

export const FLEET_PREFIX = '/fleet/v1';
export const RELAY_PATH = `${FLEET_PREFIX}/relay`;

/** One pod's answer to GET /fleet/v1/streams. */
export const podStreamsSchema = z.object({
  pod: z.string().max(253),
  streams: z.array(z.object({ view: streamViewSchema, relayed: z.boolean() })).max(100_000),
});
export type PodStreams = z.infer<typeof podStreamsSchema>;

export interface FleetRoutesOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** What the stream views add from HLS and the recorder. */
  sources: StreamViewSources;
  recordings: RecordingStore;
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

const recordingId = (ctx: RouterContext): string => `${ctx.params.app}/${ctx.params.key}/${ctx.params.name}`;

export function fleetRoutes(o: FleetRoutesOptions): Router {
  const router = new Router({ prefix: FLEET_PREFIX });
  const expected = `Bearer ${o.token}`;
  router.use(async (ctx: RouterContext, next: Next) => {
    if (!sameToken(ctx.get('authorization'), expected)) {
      throw unauthorized('fleet_token_required', 'this path is for the pods of the fleet and needs their token', {
        realm: 'rtmpd-fleet',
        invalidToken: ctx.get('authorization') !== '',
      });
    }
    await next();
  });

  /** A stream this pod has: its publisher's (`owned`) or a relay's too. */
  const local = (ctx: RouterContext, owned: boolean): Stream => {
    const app = ctx.params.app ?? '';
    const key = ctx.params.key ?? '';
    const invalid = invalidStreamName(app, key);
    if (invalid) throw new ApiError(400, 'invalid_stream_name', invalid);
    const stream = o.hub.get(app, key);
    if (!stream || (owned && stream.publisher.protocol === 'relay'))
      throw new ApiError(404, 'stream_not_found', `stream ${streamId(app, key)} is not published on pod ${o.pod}`);
    return stream;
  };

  router.get(
    '/streams',
    withQuery(noQuery, (ctx) => {
      ctx.body = podStreams(o);
    }),
  );

  const relay = (ctx: RouterContext) => {
    const stream = local(ctx, true);
    const relay = new FlvResponse(ctx.res, 'relay');
    ctx.res.once('close', () => stream.unsubscribe(relay));
    stream.subscribe(relay, performance.now());
    // The response belongs to the relay subscriber now.
    ctx.respond = false;
  };
  router.get('/relay/:app/:key.flv', withQuery(noQuery, relay));

  router.get(
    '/snapshot/:app/:key',
    withQuery(noQuery, (ctx) => sendSnapshot(ctx, o.snapshots, local(ctx, false))),
  );

  router.get(
    '/recordings',
    withQuery(recordingSelection.extend(podPageQuery.shape), async (ctx, query) => {
      ctx.body = await podRecordings(o.recordings, o.pod, query);
    }),
  );
  router.get(
    '/recordings/vod',
    withQuery(recordingSelection, async (ctx, query) => {
      ctx.body = { files: await podVod(o.recordings, o.pod, query) };
    }),
  );
  router.get(
    '/recordings/:app/:key/:name',
    withQuery(noQuery, (ctx) => o.recordings.download(ctx, recordingId(ctx))),
  );
  router.delete(
    '/recordings/:app/:key/:name',
    withQuery(noQuery, (ctx) => o.recordings.remove(ctx, recordingId(ctx))),
  );
  return router;
}
