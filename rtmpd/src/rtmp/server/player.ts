// An RTMP player as the hub sees it: a Subscriber whose write() sends each
// packet as an RTMP message on the player's stream.
import type { MediaKind } from '../../flv/media-kind.ts';
import type { MediaPacket } from '../../hub/packet.ts';
import type { CloseReason, RtmpProtocol, Subscriber } from '../../hub/subscriber.ts';
import type { Stream } from '../../hub/stream.ts';
import type { RtmpConnection } from '../io/connection.ts';
import type { SharedSource } from '../io/tick-writer.ts';
import { onStatus, rtmpSampleAccess, type StatusInfo } from '../wire/commands.ts';
import { streamBegin, streamEOF } from '../wire/control.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';

// Comparisons rather than a lookup by kind: a keyed load whose key changes
// from packet to packet goes megamorphic, a hash probe per packet and player.
const csidOf = (kind: MediaKind): number =>
  kind === 'video' ? ChunkStreamId.video : kind === 'audio' ? ChunkStreamId.audio : ChunkStreamId.data;
const typeOf = (kind: MediaKind): number =>
  kind === 'video' ? MessageType.video : kind === 'audio' ? MessageType.audio : MessageType.dataAmf0;

export class RtmpPlayer implements Subscriber {
  /** The listener the player came in on. */
  readonly kind: RtmpProtocol;
  readonly delivery = 'skip-to-keyframe';
  readonly streamId: number;
  readonly streamName: string;
  private readonly connection: RtmpConnection;
  private closed = false;
  #paused = false;
  /** performance.now() of the last pause. */
  pausedAt = 0;
  /** After a pause, video resumes at a keyframe so the picture is not smeared. */
  private awaitKeyframe = false;
  /** Where the stream's packets are serialized for its players (set by begin()). */
  private source: SharedSource | undefined = undefined;

  constructor(connection: RtmpConnection, kind: RtmpProtocol, streamId: number, streamName: string) {
    this.connection = connection;
    this.kind = kind;
    this.streamId = streamId;
    this.streamName = streamName;
  }

  get paused(): boolean {
    return this.#paused;
  }

  pendingBytes(): number {
    return this.connection.pendingBytes;
  }

  /** The replies FMS sends on play, before the stream's metadata, headers and GOP. */
  begin(stream: Stream): void {
    this.source = this.connection.sharedSource(stream);
    const details = this.streamName;
    this.connection.send(streamBegin(this.streamId));
    this.sendStatus({ level: 'status', code: 'NetStream.Play.Reset', description: `Playing and resetting ${details}.`, details });
    this.sendStatus({ level: 'status', code: 'NetStream.Play.Start', description: `Started playing ${details}.`, details });
    // FMS also sends an onStatus data message NetStream.Data.Start; FFmpeg
    // turns that into a spurious data stream, so, like nginx-rtmp, we do not.
    this.sendData(rtmpSampleAccess());
  }

  write(packet: MediaPacket): void {
    if (this.closed || this.#paused) return;
    if (this.awaitKeyframe && packet.kind === 'video' && !packet.sequenceHeader) {
      if (!packet.keyframe) return;
      this.awaitKeyframe = false;
    }
    const { kind } = packet;
    this.connection.sendShared(packet, this.source!, csidOf(kind), typeOf(kind), this.streamId, packet.timestamp, packet.body);
  }

  pause(paused: boolean, hasVideo: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (paused) this.pausedAt = performance.now();
    else this.awaitKeyframe = hasVideo;
    const code = paused ? 'NetStream.Pause.Notify' : 'NetStream.Unpause.Notify';
    this.sendStatus({
      level: 'status',
      code,
      description: `${paused ? 'Paused' : 'Unpaused'} ${this.streamName}.`,
      details: this.streamName,
    });
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    if (reason === 'stalled' || reason === 'error') {
      this.connection.destroy();
      return;
    }
    if (reason === 'unpublished') {
      this.connection.send(streamEOF(this.streamId));
      this.sendStatus({
        level: 'status',
        code: 'NetStream.Play.UnpublishNotify',
        description: `${this.streamName} is now unpublished.`,
        details: this.streamName,
      });
    }
    if (reason === 'revoked') {
      this.sendStatus({
        level: 'error',
        code: 'NetStream.Play.Unauthorized',
        description: `the credential that admitted ${this.streamName} was revoked`,
        details: this.streamName,
      });
    } else {
      this.sendStatus({
        level: 'status',
        code: 'NetStream.Play.Stop',
        description: `Stopped playing ${this.streamName}.`,
        details: this.streamName,
      });
    }
    this.connection.end();
  }

  private sendStatus(info: StatusInfo): void {
    this.connection.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, this.streamId, 0, onStatus(info));
  }

  private sendData(body: Buffer): void {
    this.connection.sendMessage(ChunkStreamId.streamCommand, MessageType.dataAmf0, this.streamId, 0, body);
  }
}
