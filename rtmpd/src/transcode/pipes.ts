// The media of a transcode's ffmpeg, over its pipes, never over the network:
// SourceFeed writes the source as FLV to its stdin, a hub subscriber that
// falls behind as a player does; RenditionPublish reads a rendition's FLV
// from its output pipe and publishes it into the hub as a `transcode`
// publisher, once it holds the rendition's fleet claim (when in a fleet).
import type { Readable, Writable } from 'node:stream';
import { FlvDemuxer, type FlvTagRecord } from '../flv/demux.ts';
import type { MediaKind } from '../flv/media-kind.ts';
import { FLV_FILE_HEADER, flvTag } from '../flv/mux.ts';
import { pushFlvTags } from '../flv/publish.ts';
import { inspectAudio, inspectVideo } from '../flv/tag.ts';
import { GopCache } from '../hub/gop-cache.ts';
import type { StreamHub } from '../hub/hub.ts';
import { streamId } from '../hub/names.ts';
import { MediaPacket, packetFlags } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { CloseReason, Subscriber } from '../hub/subscriber.ts';
import type { PublishClaim } from '../fleet/claims.ts';
import type { AdmissionDecision, AdmissionLease } from '../rtmp/server/admission.ts';
import type { Logger } from '../telemetry/logger.ts';

/**
 * The source on ffmpeg's stdin. Delivered as to a player: what the pipe has
 * not taken counts against --player-max-buffer-bytes and
 * --player-max-queue-seconds, past which ffmpeg gets nothing until the next keyframe, so a slow ffmpeg costs neither memory nor
 * the publisher's or other players' time. One that stops reading is closed
 * as stalled, and `onStalled` restarts it.
 */
export class SourceFeed implements Subscriber {
  readonly kind = 'transcode';
  readonly delivery = 'skip-to-keyframe';
  private readonly input: Writable;
  private readonly onStalled: () => void;

  constructor(input: Writable, onStalled: () => void) {
    this.input = input;
    this.onStalled = onStalled;
    // EPIPE once ffmpeg exits: the transcoder reports the exit itself.
    input.on('error', () => undefined);
  }

  begin(stream: Stream): void {
    this.input.write(FLV_FILE_HEADER(stream.audioHeader !== undefined, stream.videoHeader !== undefined));
  }

  pendingBytes(): number {
    return this.input.writableLength;
  }

  write(packet: MediaPacket): void {
    if (this.input.writableEnded || this.input.destroyed) return;
    this.input.write((packet.flvTag ??= flvTag(packet.kind, packet.timestamp, packet.body)));
  }

  close(reason: CloseReason): void {
    if (reason !== 'stalled') return void this.input.end();
    // Its queue would never drain.
    this.input.destroy();
    this.onStalled();
  }
}

export interface RenditionPublishOptions {
  hub: StreamHub;
  app: string;
  key: string;
  /** The ffmpeg output pipe it is read from. */
  output: Readable;
  /** Set in a fleet: the rendition is published only with its claim held here. */
  claim: PublishClaim | undefined;
  /** The publisher's address as the API shows it. */
  from: string;
  log: Logger;
}

/**
 * One rendition from its output pipe. Its claim is taken once ffmpeg writes
 * (its encoders work), and the pipe is read on meanwhile: ffmpeg writes every
 * rendition from one thread, so one full pipe would stall them all and its
 * reading of the source, and it would be killed as stalled. What it writes
 * before the claim is held waits in a ClaimWait, bounded. Published while the
 * pipe lasts; a claim refused or a hub that will not take it closes the pipe,
 * which ffmpeg fails on (and restarts after its backoff).
 */
export class RenditionPublish {
  private readonly o: RenditionPublishOptions;
  private readonly demuxer = new FlvDemuxer();
  /** Aborts a claim in flight when the rendition ends first. */
  private readonly ending = new AbortController();
  /** Until it is published. */
  private waiting: ClaimWait | undefined = new ClaimWait();
  private stream: Stream | undefined;
  private lease: AdmissionLease | undefined;

  constructor(o: RenditionPublishOptions) {
    this.o = o;
    o.output.once('data', () => void this.publish());
    o.output.on('data', (chunk: Buffer) => this.push(chunk));
    o.output.once('close', () => this.end());
    o.output.on('error', (err) => this.end(`its pipe failed: ${err.message}`));
  }

  private get id(): string {
    return streamId(this.o.app, this.o.key);
  }

  private async publish(): Promise<void> {
    const { hub, app, key, claim, from } = this.o;
    const request = { app, key, protocol: 'transcode' as const, signal: this.ending.signal, startedAt: performance.now() };
    let decision: AdmissionDecision;
    try {
      decision = claim ? await claim(request) : { allow: true };
    } catch (err) {
      return this.end(`its claim could not be taken: ${(err as Error).message}`);
    }
    if (this.ending.signal.aborted) return decision.allow ? decision.lease?.release() : undefined;
    if (!decision.allow) return this.end(`the fleet refused it: ${decision.description}`);
    this.lease = decision.lease;
    try {
      // rtmpd stopping ends every rendition: no warning for that.
      const close = (reason: CloseReason) => this.end(reason === 'shutdown' ? undefined : reason);
      this.stream = hub.publish(app, key, { protocol: 'transcode', remoteAddress: from, close });
    } catch (err) {
      return this.end(`the hub refused it: ${(err as Error).message}`);
    }
    const waited = this.waiting!.tags();
    this.waiting = undefined;
    this.pushTags(waited);
  }

  private push(chunk: Buffer): void {
    if (this.ending.signal.aborted) return;
    let tags: FlvTagRecord[];
    try {
      tags = this.demuxer.push(chunk);
    } catch (err) {
      return this.end(`ffmpeg's FLV could not be read: ${(err as Error).message}`);
    }
    if (this.waiting) for (const tag of tags) this.waiting.add(tag);
    else this.pushTags(tags);
  }

  private pushTags(tags: readonly FlvTagRecord[]): void {
    try {
      pushFlvTags(this.stream!, tags, performance.now());
    } catch (err) {
      this.end(`ffmpeg's FLV could not be read: ${(err as Error).message}`);
    }
  }

  /** Unpublishes the rendition and gives its claim back; `why`, when it did not end with ffmpeg's output, is logged. */
  private end(why?: string): void {
    if (this.ending.signal.aborted) return;
    this.ending.abort();
    if (why !== undefined) this.o.log.warn({ rendition: this.id, why }, 'transcode: rendition ended; closing its pipe');
    this.o.output.destroy();
    if (this.stream) this.o.hub.unpublish(this.stream);
    this.lease?.release();
  }
}

/** What a rendition keeps of ffmpeg's output while its claim is taken, at most: a GOP of 2 s up to 16 Mbit/s. */
export const CLAIM_WAIT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * A rendition's output while its claim is taken (a fleet's API round trips):
 * the last decoder config of each track and metadata, and the frames from the
 * last keyframe on (kept as a hub stream keeps its GOP), so that the rendition
 * starts playable once published. A GOP past CLAIM_WAIT_MAX_BYTES is let go
 * until the next keyframe.
 */
class ClaimWait {
  private readonly config = new Map<MediaKind, FlvTagRecord>();
  private readonly gop = new GopCache(CLAIM_WAIT_MAX_BYTES);

  add(tag: FlvTagRecord): void {
    const packet = packetOf(tag);
    if (tag.kind === 'data' || packet.sequenceHeader) this.config.set(tag.kind, copyOf(tag));
    else this.gop.add(packet);
  }

  /** In the order a publish sends them: metadata, decoder config, the frames. The GOP's memory goes back to the hub's pool. */
  tags(): FlvTagRecord[] {
    const config = (['data', 'video', 'audio'] as const).map((kind) => this.config.get(kind));
    const frames = this.gop.snapshot().map(({ kind, timestamp, body }) => ({ kind, timestamp, body }));
    this.gop.clear();
    return [...config.filter((tag) => tag !== undefined), ...frames];
  }
}

/** A config kept: its body may be a view of the pipe's chunk, which it would keep alive (the GOP cache copies frames). */
const copyOf = (tag: FlvTagRecord): FlvTagRecord => ({ ...tag, body: Buffer.from(tag.body) });

/** A tag as the hub's packet, flagged as the hub flags it; one that cannot be read has no flags and is kept as a frame (pushed, the hub counts it). */
function packetOf(tag: FlvTagRecord): MediaPacket {
  let flags = 0;
  try {
    if (tag.kind !== 'data') flags = packetFlags(tag.kind === 'audio' ? inspectAudio(tag.body) : inspectVideo(tag.body));
  } catch {
    // No flags: the GOP keeps it, as the hub relays an unreadable message.
  }
  return new MediaPacket(tag.kind, tag.timestamp, tag.body, 0, flags);
}
