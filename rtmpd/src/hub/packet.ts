// A media message as the publisher sent it. The body is the RTMP message body,
// which is byte-for-byte the FLV tag body, so it is not copied on the way in
// (it may be a view of the read buffer, valid during the fan-out only).
// RTMP players copy it into their socket's batch behind a chunk header;
// HTTP-FLV serializes a packet at most once and caches the tag here, so a
// thousand players of one stream share one buffer.
import type { MediaKind } from '../flv/media-kind.ts';

/**
 * A copy of bytes that are kept beyond the publisher's read: a body may be a
 * view of the shared read buffer (valid only while the read is handled) or a
 * small slice of one of Node's 64 KiB pool slabs (keeping it keeps the slab).
 */
export function ownMemory(bytes: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(bytes.length);
  own.set(bytes);
  return own;
}

/** A packet's fields, named; the flags default to false. */
export interface MediaPacketFields {
  kind: MediaKind;
  timestamp: number;
  body: Buffer;
  keyframe?: boolean;
  sequenceHeader?: boolean;
  /** A coded picture or audio frame, as opposed to decoder config, metadata or a command. */
  frame?: boolean;
  /** Where the codec payload begins in the body; 0 when the body could not be read. */
  payloadOffset?: number;
  /** Video: presentation minus decode time in milliseconds (FLV CompositionTime). */
  compositionTime?: number;
  receivedAt: number;
}

export class MediaPacket {
  readonly kind: MediaKind;
  /** Milliseconds, as the publisher stamped it (32-bit, may wrap). */
  readonly timestamp: number;
  readonly body: Buffer;
  /** A video frame that starts a GOP, judged from the bitstream. */
  readonly keyframe: boolean;
  /** Decoder configuration (AVC/HEVC/AV1 record, AAC AudioSpecificConfig, ...). */
  readonly sequenceHeader: boolean;
  /** A coded picture or audio frame (false for decoder config, Enhanced RTMP metadata and commands, and unreadable bodies). */
  readonly frame: boolean;
  /** Where the codec payload (NAL units, OBUs, an AAC frame, a config record) begins in the body. */
  readonly payloadOffset: number;
  /** Milliseconds from decode to presentation time (video with B-frames); 0 otherwise. */
  readonly compositionTime: number;
  /** performance.now() when the last byte arrived: the start of relay latency. */
  readonly receivedAt: number;

  /** FLV tag (header + body + PreviousTagSize), built once for all FLV outputs. */
  flvTag: Buffer | undefined = undefined;

  constructor(fields: MediaPacketFields) {
    this.kind = fields.kind;
    this.timestamp = fields.timestamp;
    this.body = fields.body;
    this.keyframe = fields.keyframe ?? false;
    this.sequenceHeader = fields.sequenceHeader ?? false;
    this.frame = fields.frame ?? false;
    this.payloadOffset = fields.payloadOffset ?? 0;
    this.compositionTime = fields.compositionTime ?? 0;
    this.receivedAt = fields.receivedAt;
  }

  /** The same packet at another time: decoder config sent to a joining player with its first frame. */
  at(timestamp: number): MediaPacket {
    return new MediaPacket({ ...this, timestamp });
  }

  /** Forgets the serialized forms once every subscriber has them; a player that joins later serializes again. */
  releaseSerialized(): void {
    this.flvTag = undefined;
  }
}
