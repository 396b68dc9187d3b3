import { Router, type RouterContext } from '@koa/router';
import { z } from 'zod';
import type { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { SnapshotError, type SnapshotErrorCode, type SnapshotService } from '../snapshot/service.ts';
import type { BitrateMeter } from './bitrate.ts';
import { ApiError } from './errors.ts';
import { streamView } from './stream-view.ts';

export interface StreamsApiOptions {
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
}

const STREAM_ID = /^rtmp\/[^/]+\/[^/]+$/;
const encodedParams = z.object({ stream_id: z.string().regex(STREAM_ID, 'expected rtmp/<app>/<key>, URL-encoded: rtmp%2Flive%2Ftest123') });
const decodedParams = z.object({ app: z.string().min(1), key: z.string().min(1) });

const SNAPSHOT_STATUS: Record<SnapshotErrorCode, number> = {
  snapshots_disabled: 409,
  no_video: 404,
  no_keyframe: 404,
  unsupported_codec: 415,
  busy: 503,
  decode_failed: 503,
};

/**
 * The original flux-rtmpd API under /api/v1/rtmp. A stream id is
 * `rtmp/<app>/<key>`, URL-encoded as one path segment
 * (`rtmp%2Flive%2Ftest123`); the unencoded form works too, since clients
 * and proxies that decode %2F are common.
 */
export function streamsApi({ hub, snapshots, bitrate }: StreamsApiOptions): Router {
  const router = new Router({ prefix: '/api/v1/rtmp/streams' });

  const find = (params: unknown): Stream => {
    const id = streamIdOf(params);
    const stream = hub.byId(id);
    if (!stream)
      throw new ApiError(
        404,
        'stream_not_found',
        `stream ${id} is not live; check that the publisher is connected and that the id is rtmp/<app>/<key>, URL-encoded (rtmp%2Flive%2Ftest123)`,
      );
    return stream;
  };

  const one = (ctx: RouterContext) => {
    const stream = find(ctx.params);
    ctx.body = streamView(stream, bitrate.kbps(stream));
  };

  const snapshot = async (ctx: RouterContext) => {
    const stream = find(ctx.params);
    try {
      const { jpeg } = await snapshots.get(stream);
      ctx.type = 'image/jpeg';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = jpeg;
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err;
      throw new ApiError(SNAPSHOT_STATUS[err.code], err.code, err.message, err.code === 'busy' ? { 'Retry-After': '1' } : {});
    }
  };

  router.get('/', (ctx) => {
    ctx.body = { streams: hub.list().map((stream) => streamView(stream, bitrate.kbps(stream))) };
  });
  router.get('/:stream_id', one);
  router.get('/:stream_id/snapshot', snapshot);
  router.get('/rtmp/:app/:key', one);
  router.get('/rtmp/:app/:key/snapshot', snapshot);
  return router;
}

function streamIdOf(params: unknown): string {
  const encoded = encodedParams.safeParse(params);
  if (encoded.success) return encoded.data.stream_id;
  const decoded = decodedParams.safeParse(params);
  if (decoded.success) return `rtmp/${decoded.data.app}/${decoded.data.key}`;
  throw new ApiError(400, 'invalid_stream_id', encoded.error.issues[0]?.message ?? 'invalid stream id');
}
