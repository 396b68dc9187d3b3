import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { z } from 'zod';
import { FLV_TAG_TYPE } from '../flv/media-kind.ts';
import { FLV_FILE_HEADER } from '../flv/mux.ts';
import type { StreamHub } from '../hub/hub.ts';
import { invalidStreamName, RESERVED_APPS, streamId } from '../hub/names.ts';
import type { JoinBurst } from '../hub/join-burst.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { CloseReason, Subscriber } from '../hub/subscriber.ts';
import type { SocketIo } from '../rtmp/io/socket-io.ts';
import { FLV_FRAMING, type BurstMessage, type Framing, type SharedSource, type TickWriter } from '../rtmp/io/tick-writer.ts';
import type { AdmissionLease } from '../rtmp/server/admission.ts';
import { ApiError } from './errors.ts';
import { noQuery } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type Handlers, type RouteGroup } from './routing.ts';
import { pacedByHub, refusedAsPipelined } from './server.ts';

export interface HttpFlvOptions {
  hub: StreamHub;
  /** Writes the players' tags (FlvResponse): rtmpd's merges them as --player-write-interval-ms says. */
  playerIo: SocketIo;
  /** How long a request for a stream that is not live waits for its publisher. */
  playWaitMs: number;
  /** Authorizes the player (auth/http-access.ts authorizeHttpPlay): throws an ApiError to refuse; the lease ends a revoked player. */
  authorizePlay?: (ctx: Context, app: string, key: string, signal: AbortSignal) => Promise<AdmissionLease | undefined>;
}

const params = z.object({ app: z.string(), key: z.string() }).superRefine(({ app, key }, ctx) => {
  const invalid = invalidStreamName(app, key);
  if (invalid) ctx.addIssue({ code: 'custom', message: invalid });
});

/** The HTTP head of an HTTP-FLV answer. */
const FLV_HEAD = { 'Content-Type': 'video/x-flv', 'Cache-Control': 'no-cache, no-store' };

/**
 * HTTP-FLV playback at `GET /<app>/<key>.flv`: the FLV header, then the
 * stream's metadata, sequence headers and cached GOP, then live tags, for as
 * long as the stream lives. A `HEAD` (Koa's router routes it as its GET) is
 * answered as the GET would be, without the body: it subscribes no player,
 * and its response ends. Mount it last: it matches any /<a>/<b>.flv.
 */
export const HTTP_FLV_ROUTES = {
  play: {
    method: 'get',
    paths: ['/:app/:key.flv'],
    summary: 'HTTP-FLV playback: the stream as FLV, for as long as it lives',
    access: 'play',
    query: noQuery,
    othersIgnored: true,
    playCredentials: true,
    ok: { 200: { description: 'The FLV stream', media: ['video/x-flv'] } },
    errors: { 400: ['invalid_stream_name', 'pipelined_request'], 404: ['stream_not_found', 'not_found'] },
  },
} satisfies RouteGroup;

export function httpFlvRoute({ hub, playerIo, playWaitMs, authorizePlay }: HttpFlvOptions): Router {
  const play: Handlers<typeof HTTP_FLV_ROUTES>['play'] = async (ctx) => {
    // Reserved apps are the API's own paths: never a stream.
    if (RESERVED_APPS.has(ctx.params.app ?? '')) throw new ApiError(404, 'not_found', `no route for GET ${ctx.path}`);
    const parsed = params.safeParse(ctx.params);
    if (!parsed.success) throw new ApiError(400, 'invalid_stream_name', parsed.error.issues[0]?.message ?? 'invalid stream name');
    const { app, key } = parsed.data;
    // Answers leave a connection in order, so this one would begin only when
    // those before it end, a live one never: Node sends the head written
    // before then when its turn comes, and no tag follows. Players send one
    // request at a time; this answer, too, waits for its turn.
    if (ctx.method === 'GET' && refusedAsPipelined(ctx.res))
      throw new ApiError(
        400,
        'pipelined_request',
        'HTTP-FLV is not played for a pipelined request: send it once the answer before it on this connection has ended, or on a connection of its own',
      );
    const player = new FlvResponse(ctx.res, playerIo);
    // The viewer may leave while being authorized, waiting for the publisher, or at any time after.
    const left = new AbortController();
    ctx.res.once('close', () => left.abort());
    // What the request took is given back in this one place, when the response closes (at once if it has).
    const onLeft = (giveBack: () => void) =>
      left.signal.aborted ? giveBack() : left.signal.addEventListener('abort', giveBack, { once: true });
    const lease = await authorizePlay?.(ctx, app, key, left.signal);
    if (lease) onLeft(() => lease.release());
    const head = ctx.method === 'HEAD';
    const stream = left.signal.aborted
      ? undefined
      : head
        ? await hub.arrival(app, key, playWaitMs, left.signal)
        : await hub.subscribe(app, key, player, playWaitMs, left.signal);
    // Only a GET subscribes its player; a HEAD just waits for the stream.
    if (stream && !head) onLeft(() => stream.unsubscribe(player));
    if (left.signal.aborted) {
      ctx.respond = false;
      return;
    }
    if (!stream) {
      const waited = playWaitMs > 0 ? ` (waited ${playWaitMs / 1000} s)` : '';
      throw new ApiError(
        404,
        'stream_not_found',
        `stream ${streamId(app, key)} is not live${waited}; check that the publisher is connected to rtmp://<host>/${app} with key ${key}`,
      );
    }
    if (head) {
      ctx.set(FLV_HEAD);
      ctx.status = 200;
      return;
    }
    // The response belongs to the player now (it began with the FLV header), not to Koa.
    ctx.respond = false;
    lease?.attach(() => {
      stream.unsubscribe(player);
      player.close('revoked');
    });
  };
  return routerFor(HTTP_FLV_ROUTES, { play });
}

/** A packet as the FLV tag it is sent as. */
const flvTagMessage = (packet: MediaPacket): BurstMessage => ({
  csid: 0,
  typeId: FLV_TAG_TYPE[packet.kind],
  streamId: 0,
  timestamp: packet.timestamp,
  body: packet.body,
});

/**
 * One HTTP-FLV viewer (or another pod relaying the stream): a hub subscriber
 * whose tags go out as RTMP players' messages do, through a tick writer of
 * `io` (rtmp/io/tick-writer.ts): serialized once per stream for all its
 * players, one socket write per player per tick, and, with a write interval
 * and enough players, merged over the interval. The response's head and the
 * FLV header go through Node's response; the tags are written to its socket
 * as the chunks (or, for an HTTP/1.0 client, the body) that follow them, and
 * the response's end writes the last chunk after them.
 */
export class FlvResponse implements Subscriber {
  readonly kind: 'http-flv' | 'relay';
  readonly delivery = 'skip-to-keyframe';
  private readonly res: ServerResponse;
  private readonly io: SocketIo;
  /** Set by begin(): the writer of the response's socket, the stream's run state in it, and how tags are framed. */
  private writer: TickWriter | undefined = undefined;
  private source: SharedSource | undefined = undefined;
  private framing: Framing = FLV_FRAMING.httpChunk;

  constructor(res: ServerResponse, io: SocketIo, kind: 'http-flv' | 'relay' = 'http-flv') {
    this.res = res;
    this.io = io;
    this.kind = kind;
    pacedByHub(res);
  }

  /** The HTTP head and the FLV header. */
  begin(stream: Stream): void {
    if (this.gone()) return;
    // Players such as flv.js only set up the tracks the header announces;
    // before the publisher's first sequence header both are announced.
    const known = stream.videoHeader !== undefined || stream.audioHeader !== undefined;
    const hasAudio = known ? stream.audioHeader !== undefined : true;
    const hasVideo = known ? stream.videoHeader !== undefined : true;
    this.res.writeHead(200, FLV_HEAD);
    this.res.write(FLV_FILE_HEADER(hasAudio, hasVideo));
    // Only a pipelined request's answer has no socket yet: the route refuses those, and a fleet's pods do not pipeline.
    const socket = this.res.socket;
    if (socket === null) return void this.res.destroy();
    this.writer = this.io.writer(socket);
    this.framing = this.res.chunkedEncoding ? FLV_FRAMING.httpChunk : FLV_FRAMING.tag;
    this.source = this.writer.sourceOf(stream, this.framing);
  }

  pendingBytes(): number {
    // The writer counts what its socket's Writable holds, the response's head and FLV header too.
    return this.writer?.pendingBytes ?? this.res.writableLength;
  }

  write(packet: MediaPacket): void {
    if (this.gone() || this.writer === undefined) return;
    const type = FLV_TAG_TYPE[packet.kind];
    this.writer.writeShared(packet, this.source!, 0, type, 0, packet.timestamp, packet.body, this.framing);
  }

  /** A joiner's metadata, config and GOP: serialized once for every player of the stream that joins before its next packet. */
  writeBurst(burst: JoinBurst): void {
    if (this.gone() || this.writer === undefined) return;
    this.writer.writeSharedBurst(burst, this.source!, () => burst.packets.map(flvTagMessage));
  }

  close(reason: CloseReason): void {
    // A stalled viewer's queue would never drain, so it is cut rather than flushed.
    if (reason === 'stalled' || reason === 'error') return void this.res.destroy();
    if (this.gone()) return;
    this.writer?.flush();
    this.res.end();
  }

  /** The viewer left (its 'close' unsubscribes it in a moment) or the response was ended. */
  private gone(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }
}
