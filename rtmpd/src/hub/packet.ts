// A media message as the publisher sent it. The body is the RTMP message body,
// which is byte-for-byte the FLV tag body, so it is not copied on the way in
// (it may be a view of the read buffer, valid during the fan-out only).
// RTMP players copy it into their socket's batch behind a chunk header;
// HTTP-FLV serializes a packet at most once and caches the tag here, so a
// thousand players of one stream share one buffer.
import type { MediaKind } from '../flv/media-kind.ts';
import type { AudioInspection, VideoInspection } from '../flv/tag.ts';
import type { AudioTrackInfo } from '../flv/track.ts';

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

/** A keyframe buffer this much more than twice the keyframe's size is replaced by a smaller one. */
const KEYFRAME_SLACK_BYTES = 4096;

/**
 * The copy of a stream's last keyframe, made in one buffer that each
 * keyframe overwrites. A copy per keyframe lived for a GOP, long enough for
 * its packet to be promoted, and so stayed allocated until V8's next major
 * GC: at 500 streams, megabytes of dead keyframes at any moment. The stream
 * and its GOP cache are the only holders of a kept body (subscribers copy
 * what they are written before write() returns), and both let go of the
 * last keyframe when the next arrives.
 */
export class KeyframeCopy {
  private buffer: Buffer | undefined = undefined;

  /** `bytes` copied into this stream's keyframe buffer, which overwrites the previous keyframe. */
  of(bytes: Buffer): Buffer {
    const size = bytes.length;
    let buffer = this.buffer;
    // The buffer grows to the stream's largest keyframe; one left by a far larger keyframe (a scene change) is let go of.
    if (buffer === undefined || buffer.length < size || buffer.length > 2 * size + KEYFRAME_SLACK_BYTES)
      this.buffer = buffer = Buffer.allocUnsafeSlow(size);
    buffer.set(bytes);
    return buffer.subarray(0, size);
  }
}

/** What a packet is, as bits of MediaPacket.flags. */
export const PacketFlag = {
  /** A video frame that starts a GOP, judged from the bitstream. */
  keyframe: 1,
  /** Decoder configuration (AVC/HEVC/AV1 record, AAC AudioSpecificConfig, ...). */
  sequenceHeader: 2,
  /** A coded picture or audio frame (not decoder config, Enhanced RTMP metadata or a command, nor an unreadable body). */
  frame: 4,
} as const;

/** The PacketFlag bits of an inspected message: decoder config, a keyframe (video), a frame. */
export function packetFlags(info: VideoInspection | AudioInspection): number {
  return (
    ('keyframe' in info && info.keyframe ? PacketFlag.keyframe : 0) |
    (info.sequenceHeader ? PacketFlag.sequenceHeader : 0) |
    (info.packet === 'frame' ? PacketFlag.frame : 0)
  );
}

/**
 * One object per packet, made on the publisher's hot path: its fields are
 * passed in order rather than as an object of named fields, which V8 would
 * allocate as well, and its flags share one number.
 */
export class MediaPacket {
  readonly kind: MediaKind;
  /** Milliseconds, as the publisher stamped it (32-bit, may wrap). */
  readonly timestamp: number;
  readonly body: Buffer;
  /** performance.now() when the last byte arrived: the start of relay latency. */
  readonly receivedAt: number;
  /** PacketFlag bits. */
  readonly flags: number;
  /** Where the codec payload (NAL units, OBUs, an AAC frame, a config record) begins in the body; 0 when it could not be read. */
  readonly payloadOffset: number;
  /** Milliseconds from decode to presentation time (video with B-frames, FLV CompositionTime); 0 otherwise. */
  readonly compositionTime: number;
  /**
   * The audio track the hub found this packet to belong to, so that outputs
   * read it rather than parse each frame again: for a config, the track it
   * describes; for a frame, the stream's track when it came, if of the
   * frame's codec. Undefined for video and data, and for audio that cannot
   * be described (an unreadable body, an AAC frame before any AAC config).
   * A frame cached in a GOP keeps its track: a joiner's older frames are not
   * taken for the track's newer config.
   */
  readonly audioTrack: AudioTrackInfo | undefined;

  /** FLV tag (header + body + PreviousTagSize), built once for all FLV outputs. */
  flvTag: Buffer | undefined = undefined;

  constructor(
    kind: MediaKind,
    timestamp: number,
    body: Buffer,
    receivedAt: number,
    flags = 0,
    payloadOffset = 0,
    compositionTime = 0,
    audioTrack: AudioTrackInfo | undefined = undefined,
  ) {
    this.kind = kind;
    this.timestamp = timestamp;
    this.body = body;
    this.receivedAt = receivedAt;
    this.flags = flags;
    this.payloadOffset = payloadOffset;
    this.compositionTime = compositionTime;
    this.audioTrack = audioTrack;
  }

  get keyframe(): boolean {
    return (this.flags & PacketFlag.keyframe) !== 0;
  }

  get sequenceHeader(): boolean {
    return (this.flags & PacketFlag.sequenceHeader) !== 0;
  }

  get frame(): boolean {
    return (this.flags & PacketFlag.frame) !== 0;
  }

  /** The same packet at another time: decoder config sent to a joining player with its first frame. */
  at(timestamp: number): MediaPacket {
    return new MediaPacket(
      this.kind,
      timestamp,
      this.body,
      this.receivedAt,
      this.flags,
      this.payloadOffset,
      this.compositionTime,
      this.audioTrack,
    );
  }

  /** Forgets the serialized forms once every subscriber has them; a player that joins later serializes again. */
  releaseSerialized(): void {
    this.flvTag = undefined;
  }
}
