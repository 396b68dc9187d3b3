import { MediaParseError } from '../codec/errors.ts';
import {
  inspectAudio,
  inspectVideo,
  LEGACY_VIDEO_PAYLOAD_OFFSET,
  legacyCompositionTime,
  legacyVideoFrameCodec,
  videoKeyframe,
  type AudioInspection,
  type VideoInspection,
} from '../flv/tag.ts';
import {
  changesAudioFormat,
  describeAudioTrack,
  describeVideoTrack,
  trackFrameOffset,
  type AudioTrackInfo,
  type VideoTrackInfo,
} from '../flv/track.ts';
import { IntervalReport } from '../telemetry/interval-report.ts';
import { GopCache } from './gop-cache.ts';
import { JoinBurst } from './join-burst.ts';
import { streamId } from './names.ts';
import { KeyframeCopy, MediaPacket, ownMemory, PacketFlag, packetFlags } from './packet.ts';
import {
  DeliveryGate,
  PLAYER_KINDS,
  SUBSCRIBER_KINDS,
  type CloseReason,
  type PublishProtocol,
  type Subscriber,
  type SubscriberKind,
} from './subscriber.ts';

export interface StreamOptions {
  gopCacheMaxBytes: number;
  playerMaxBufferBytes: number;
  /** How far behind the stream's newest media a player's oldest unsent media may be (--player-max-queue-seconds); absent: bytes alone bound it. */
  playerMaxQueueMs?: number;
  /** Called once per packet after fan-out, with the stream's source and the packet's ingest-to-send delay here. */
  onRelayed?: (source: StreamSource, latencyMs: number) => void;
  /**
   * Called for each frame not sent to a relay to another pod of a fleet (its
   * queue passed a player's bound): every player there misses it,
   * so it is not one slow player's drop (stats.framesDropped).
   */
  onRelayFrameDropped?: () => void;
  /** Called when what the stream knows of its tracks changes: a decoder config or onMetaData arrived. */
  onDescribed?: (stream: Stream) => void;
  /**
   * Called with why a publisher's packet could not be read: for the stream's
   * first such packet, then at most once per REPEATED_WARNING_INTERVAL_MS (a minute),
   * with how many there were since the last call (stats.parseErrors counts them all).
   */
  onParseError?: (stream: Stream, err: MediaParseError, count: number) => void;
}

export interface PublisherInfo {
  /** How it came in here (PUBLISH_PROTOCOLS), or `relay`: pulled from the pod of the fleet that owns the stream (fleet/relays.ts). */
  protocol: PublishProtocol | 'relay';
  remoteAddress: string;
  /** Ends the publisher's connection, e.g. on shutdown. */
  close(reason: CloseReason): void;
}

/**
 * Where a stream's media comes from, the `source` label of every per-stream
 * series: its publisher on this server, or a relay from the pod of its fleet
 * that owns it. A fleet's ingest is the `publisher` series alone; a relayed
 * copy's received bytes are the owner's sent bytes again.
 */
export const STREAM_SOURCES = ['publisher', 'relay'] as const;
export type StreamSource = (typeof STREAM_SOURCES)[number];

/** Subscribers closeStalled closed: players (viewers), and relays to other pods of a fleet. */
export interface StalledClosed {
  players: number;
  relays: number;
}

/** Counters kept as plain numbers on the hot path; telemetry reads them when scraped. */
export interface StreamStats {
  bytesIn: number;
  videoFrames: number;
  audioFrames: number;
  keyframes: number;
  /** Frames not sent to slow players (relays to other pods: StreamOptions.onRelayFrameDropped). */
  framesDropped: number;
  parseErrors: number;
  /** GOPs that outgrew --gop-cache-max-bytes: players joining in them wait for the next keyframe. */
  gopOverflows: number;
  /**
   * Bytes of playlists, init sections, segments and parts sent to the
   * stream's HLS players while it is live (after its end: HlsStats
   * playerBytesAfterEnd), counted by its muxer: response bodies handed whole to
   * their sockets. Not media handed to a subscriber: the HLS segmenter is
   * one subscriber for all of them.
   */
  hlsPlayerBytes: number;
}

export const zeroStreamStats = (): StreamStats => ({
  bytesIn: 0,
  videoFrames: 0,
  audioFrames: 0,
  keyframes: 0,
  framesDropped: 0,
  parseErrors: 0,
  gopOverflows: 0,
  hlsPlayerBytes: 0,
});

/** Decoder config and metadata waiting to go out with a subscriber's next media packet. */
interface HeldConfig {
  metadata: MediaPacket | undefined;
  video: MediaPacket | undefined;
  audio: MediaPacket | undefined;
}

interface Delivery {
  subscriber: Subscriber;
  /** The subscriber's kind as an index of SUBSCRIBER_KINDS: its slot of Stream.bytesOutByKind. */
  kindIndex: number;
  /** Absent for a lossless subscriber, which gets every packet. */
  gate: DeliveryGate | undefined;
  /**
   * Config the subscriber has not been sent: a joiner's, until its first
   * media packet, and a skipping player's, until it resumes. It goes out
   * right before that packet, the decoder config stamped with its timestamp,
   * so a client sees no jump from 0 to the stream's time in its first media
   * messages; a newer header replaces the held one.
   */
  held: HeldConfig | undefined;
}

const noSubscribers = (): Record<SubscriberKind, number> =>
  Object.fromEntries(SUBSCRIBER_KINDS.map((kind) => [kind, 0])) as Record<SubscriberKind, number>;

/** One live stream: its publisher, its players, the state a new player needs. */
export class Stream {
  readonly app: string;
  readonly key: string;
  readonly id: string;
  readonly startTime = new Date();
  readonly publisher: PublisherInfo;
  readonly source: StreamSource;
  readonly stats = zeroStreamStats();
  /**
   * Media bytes handed to subscribers, by kind (indexed as SUBSCRIBER_KINDS):
   * one slot per kind, so a write adds to one number, and what went to
   * viewers can be told from what went to the recorder, the HLS segmenter
   * and relays to other pods.
   */
  readonly bytesOutByKind = new Float64Array(SUBSCRIBER_KINDS.length);

  metadata: MediaPacket | undefined;
  /** onMetaData values as the encoder declared them (width, framerate, encoder, ...). */
  metadataValues: Record<string, unknown> = {};
  videoHeader: MediaPacket | undefined;
  audioHeader: MediaPacket | undefined;
  videoTrack: VideoTrackInfo | undefined;
  audioTrack: AudioTrackInfo | undefined;
  lastKeyframe: MediaPacket | undefined;
  /** Bumped on every keyframe, so snapshot caches know when they are stale. */
  keyframeSeq = 0;

  private readonly gop: GopCache;
  /** What joiners are sent, made at the first join since the stream's last packet. */
  private joinBurst: JoinBurst | undefined = undefined;
  private readonly keyframeCopy = new KeyframeCopy();
  private readonly deliveries = new Map<Subscriber, Delivery>();
  private readonly counts = noSubscribers();
  private readonly options: StreamOptions;
  private nalLengthSize = 4;
  private ended = false;
  /** An encoder that sends bad packets sends them at its frame rate: onParseError is called at most once a minute. */
  private readonly parseErrorReport = new IntervalReport();

  constructor(app: string, key: string, publisher: PublisherInfo, options: StreamOptions) {
    this.app = app;
    this.key = key;
    this.id = streamId(app, key);
    this.publisher = publisher;
    this.source = publisher.protocol === 'relay' ? 'relay' : 'publisher';
    this.options = options;
    this.gop = new GopCache(options.gopCacheMaxBytes);
  }

  get subscriberCount(): number {
    return this.deliveries.size;
  }

  /** Subscribers now, by kind. */
  subscriberCounts(): Readonly<Record<SubscriberKind, number>> {
    return this.counts;
  }

  /** Subscribers with a viewer at the other end (PLAYER_KINDS). */
  get playerCount(): number {
    let players = 0;
    for (const kind of PLAYER_KINDS) players += this.counts[kind];
    return players;
  }

  /** Media bytes handed to all subscribers. */
  get bytesOut(): number {
    let bytes = 0;
    for (const kindBytes of this.bytesOutByKind) bytes += kindBytes;
    return bytes;
  }

  get gopCacheBytes(): number {
    return this.gop.bytes;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  pushVideo(timestamp: number, body: Buffer, receivedAt: number): void {
    this.stats.bytesIn += body.length;
    // AVC and HEVC frames of a described track are most messages: they need no inspection object.
    const codec = this.videoTrack === undefined ? undefined : legacyVideoFrameCodec(body);
    let info: VideoInspection | undefined;
    let keyframe = false;
    try {
      if (codec !== undefined) keyframe = videoKeyframe(codec, body, LEGACY_VIDEO_PAYLOAD_OFFSET, this.nalLengthSize);
      else info = inspectVideo(body, this.nalLengthSize);
    } catch (err) {
      // A frame we cannot read is still relayed: players may understand it.
      this.countParseError(err, receivedAt);
      this.push(new MediaPacket('video', timestamp, body, receivedAt));
      return;
    }
    if (info !== undefined) return this.pushInspectedVideo(timestamp, body, receivedAt, info);
    this.stats.videoFrames++;
    const flags = PacketFlag.frame | (keyframe ? PacketFlag.keyframe : 0);
    this.relayVideo(timestamp, body, receivedAt, flags, LEGACY_VIDEO_PAYLOAD_OFFSET, legacyCompositionTime(body));
  }

  private pushInspectedVideo(timestamp: number, body: Buffer, receivedAt: number, info: VideoInspection): void {
    if (info.endOfSequence) return;
    if (info.sequenceHeader) {
      const track = this.describeTrack(() => describeVideoTrack(info), receivedAt);
      if (track !== undefined) {
        this.videoTrack = track;
        this.nalLengthSize = track.nalLengthSize ?? 4;
        this.options.onDescribed?.(this);
      }
    } else if (info.packet === 'frame') {
      this.stats.videoFrames++;
    }
    this.relayVideo(timestamp, body, receivedAt, packetFlags(info), info.dataOffset, info.compositionTime);
  }

  private relayVideo(
    timestamp: number,
    body: Buffer,
    receivedAt: number,
    flags: number,
    payloadOffset: number,
    compositionTime: number,
  ): void {
    // Decoder config stays for as long as the stream lives, the last keyframe until the next.
    const kept = (flags & (PacketFlag.sequenceHeader | PacketFlag.keyframe)) !== 0;
    const copy = flags & PacketFlag.sequenceHeader ? ownMemory(body) : kept ? this.keyframeCopy.of(body) : body;
    const packet = new MediaPacket('video', timestamp, copy, receivedAt, flags, payloadOffset, compositionTime);
    if (packet.sequenceHeader) this.videoHeader = packet;
    if (packet.keyframe) {
      this.stats.keyframes++;
      this.lastKeyframe = packet;
      this.keyframeSeq++;
    }
    this.push(packet, kept);
  }

  pushAudio(timestamp: number, body: Buffer, receivedAt: number): void {
    this.stats.bytesIn += body.length;
    const track = this.audioTrack;
    // Frames of the track (AAC's, MP3's, G.711's, ...) are most messages: they need no inspection.
    const frameOffset = track && trackFrameOffset(track, body);
    if (frameOffset !== undefined) {
      this.stats.audioFrames++;
      this.push(new MediaPacket('audio', timestamp, body, receivedAt, PacketFlag.frame, frameOffset, 0, track));
      return;
    }
    let info;
    try {
      info = inspectAudio(body);
    } catch (err) {
      this.countParseError(err, receivedAt);
      this.push(new MediaPacket('audio', timestamp, body, receivedAt));
      return;
    }
    let belongsTo: AudioTrackInfo | undefined;
    if (info.sequenceHeader) {
      belongsTo = this.describeAudioConfig(info, body, receivedAt);
    } else if (info.packet === 'frame') {
      this.stats.audioFrames++;
      belongsTo = this.frameTrack(info, receivedAt);
    }
    const kept = info.sequenceHeader ? ownMemory(body) : body;
    const packet = new MediaPacket('audio', timestamp, kept, receivedAt, packetFlags(info), info.dataOffset, 0, belongsTo);
    if (info.sequenceHeader) this.audioHeader = packet;
    this.push(packet);
  }

  /**
   * The track an audio sequence header describes, now the stream's; the
   * stream's own when it repeats the header the track came from (encoders
   * resend it), so that the frames before and after it are one track's.
   * Undefined when it cannot be read.
   */
  private describeAudioConfig(info: AudioInspection, body: Buffer, receivedAt: number): AudioTrackInfo | undefined {
    const last = this.audioHeader;
    if (last?.audioTrack !== undefined && last.audioTrack === this.audioTrack && last.body.equals(body)) return last.audioTrack;
    const track = this.describeTrack(() => describeAudioTrack(info), receivedAt);
    if (track !== undefined) {
      this.audioTrack = track;
      this.options.onDescribed?.(this);
    }
    return track;
  }

  /**
   * The track an audio frame belongs to. An AAC frame needs its
   * AudioSpecificConfig to be described: one before any (an encoder that
   * switched from MP3 to AAC and sent none) belongs to no track, so outputs
   * that describe their tracks (fMP4, HLS, recordings) leave it out rather
   * than write it as MP3; it is counted, and reported, as a parse error.
   * Codecs without a sequence header (MP3, G.711) describe themselves per
   * frame: a switch to one (AAC to MP3) is a new track.
   */
  private frameTrack(info: AudioInspection, receivedAt: number): AudioTrackInfo | undefined {
    if (info.codec === 'aac') {
      if (this.audioTrack?.codec === 'aac') return this.audioTrack;
      this.countParseError(
        new MediaParseError('AAC frame before any AAC sequence header (AudioSpecificConfig): left out of HLS and recordings'),
        receivedAt,
      );
      return undefined;
    }
    if (describesNewTrack(this.audioTrack, info)) {
      // A sequence header describes its codec's frames only: players and recordings must not get AAC's before MP3.
      if (this.audioTrack?.codec !== info.codec) this.audioHeader = undefined;
      this.audioTrack = describeAudioTrack(info);
      this.options.onDescribed?.(this);
    }
    return this.audioTrack;
  }

  /**
   * A sequence header's track description, or undefined (counted) when it
   * cannot be read: the config is still relayed and kept, since a player's
   * decoder may read what we cannot.
   */
  private describeTrack<Track>(describe: () => Track, receivedAt: number): Track | undefined {
    try {
      return describe();
    } catch (err) {
      this.countParseError(err, receivedAt);
      return undefined;
    }
  }

  /**
   * Counts a packet the codec parsers could not read and reports it
   * (rate-limited); anything but a MediaParseError is a bug of ours and is
   * thrown on, to close the publisher's connection as its session's other faults do.
   */
  private countParseError(err: unknown, now: number): void {
    if (!(err instanceof MediaParseError)) throw err;
    this.stats.parseErrors++;
    const count = this.parseErrorReport.take(now);
    if (count > 0) this.options.onParseError?.(this, err, count);
  }

  /** `body` is the AMF0 data message ("onMetaData", values) as players expect it. */
  setMetadata(timestamp: number, body: Buffer, values: Record<string, unknown>, receivedAt: number): void {
    this.stats.bytesIn += body.length;
    this.metadataValues = values;
    this.metadata = new MediaPacket('data', timestamp, ownMemory(body), receivedAt);
    this.push(this.metadata);
    this.options.onDescribed?.(this);
  }

  /**
   * Adds a subscriber: it begins, then gets the cached GOP at once, preceded
   * by the stream's metadata and decoder config, the config at the GOP's
   * first timestamp (with no GOP cached, they wait for the first live packet).
   */
  subscribe(subscriber: Subscriber, now: number): void {
    const gate =
      subscriber.delivery === 'lossless'
        ? undefined
        : new DeliveryGate(this.options.playerMaxBufferBytes, this.options.playerMaxQueueMs ?? Infinity, now);
    const { metadata, videoHeader: video, audioHeader: audio } = this;
    const held = metadata || video || audio ? { metadata, video, audio } : undefined;
    const delivery: Delivery = { subscriber, kindIndex: SUBSCRIBER_KINDS.indexOf(subscriber.kind), gate, held };
    this.deliveries.set(subscriber, delivery);
    this.counts[subscriber.kind]++;
    subscriber.begin(this);
    const burst = this.currentJoinBurst();
    if (burst !== undefined) this.sendBurst(delivery, burst);
    gate?.allowBurst(subscriber.pendingBytes());
  }

  /**
   * The burst a joiner gets now, undefined with no GOP cached; the same one
   * until the stream's next packet, so its GOP is copied out of the cache
   * once for all who join meanwhile.
   */
  private currentJoinBurst(): JoinBurst | undefined {
    if (this.joinBurst !== undefined) return this.joinBurst;
    const gop = this.gop.snapshot();
    if (gop.length === 0) return undefined;
    const { metadata, videoHeader, audioHeader } = this;
    const start = gop[0]!.timestamp;
    // onMetaData keeps its own time, as in send().
    const config = [metadata, videoHeader?.at(start), audioHeader?.at(start)].filter((packet) => packet !== undefined);
    this.joinBurst = new JoinBurst([...config, ...gop]);
    return this.joinBurst;
  }

  /** The stream has a new packet (or ended): joiners from now on get a new burst. */
  private replaceJoinBurst(): void {
    if (this.joinBurst === undefined) return;
    this.joinBurst.replaced = true;
    this.joinBurst = undefined;
  }

  /** Writes a joiner's burst, which holds the config it was held: the GOP goes out whole, bounded by the cache, not by the player's queue. */
  private sendBurst(delivery: Delivery, burst: JoinBurst): void {
    const { subscriber, gate } = delivery;
    delivery.held = undefined;
    if (subscriber.writeBurst !== undefined) subscriber.writeBurst(burst);
    else for (const packet of burst.packets) subscriber.write(packet);
    if (gate !== undefined) gate.queued += burst.bodyBytes;
    this.bytesOutByKind[delivery.kindIndex]! += burst.bodyBytes;
  }

  unsubscribe(subscriber: Subscriber): void {
    if (this.deliveries.delete(subscriber)) this.counts[subscriber.kind]--;
  }

  /**
   * Closes players whose queue has drained slower than `minBytesPerSecond`
   * (or not at all) for `timeoutMs`; returns how many, relays to other pods of
   * a fleet apart (rtmpd_fleet_relays_stalled_closed_total: the pod that
   * relays is not a viewer). Forwards and transcodes are left out: each
   * counts its own stall as a failure (rtmpd_forward_failures_total,
   * rtmpd_transcode_failures_total) and is retried.
   */
  closeStalled(now: number, timeoutMs: number, minBytesPerSecond = 0): StalledClosed {
    const closed: StalledClosed = { players: 0, relays: 0 };
    const minProgress = (minBytesPerSecond * timeoutMs) / 1000;
    for (const { subscriber, gate } of this.deliveries.values()) {
      if (gate === undefined || gate.stuckFor(subscriber.pendingBytes(), now, minProgress) < timeoutMs) continue;
      this.unsubscribe(subscriber);
      subscriber.close('stalled');
      if (subscriber.kind === 'relay') closed.relays++;
      else if (PLAYER_KINDS.includes(subscriber.kind)) closed.players++;
    }
    return closed;
  }

  /** Ends the stream for every subscriber; the hub calls this on unpublish. */
  end(reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    this.gop.clear();
    this.replaceJoinBurst();
    const subscribers = [...this.deliveries.keys()];
    this.deliveries.clear();
    for (const kind of SUBSCRIBER_KINDS) this.counts[kind] = 0;
    // A subscriber that throws (a bug of ours) leaves the others closed all the same; the first error is the caller's.
    let failure: { err: unknown } | undefined;
    for (const subscriber of subscribers) {
      try {
        subscriber.close(reason);
      } catch (err) {
        failure ??= { err };
      }
    }
    if (failure) throw failure.err;
  }

  /** `owned`: the body is a copy the stream keeps, which the GOP cache may share. */
  private push(packet: MediaPacket, owned = false): void {
    this.replaceJoinBurst();
    if (this.gop.add(packet, owned)) this.stats.gopOverflows++;
    if (this.deliveries.size === 0) return;
    for (const delivery of this.deliveries.values()) this.deliver(delivery, packet);
    this.options.onRelayed?.(this.source, performance.now() - packet.receivedAt);
    // Joiners serialize again what they need: kept serialized bytes would pin pool slabs.
    packet.releaseSerialized();
  }

  private deliver(delivery: Delivery, packet: MediaPacket): void {
    const { subscriber, gate } = delivery;
    if (packet.sequenceHeader || packet.kind === 'data') {
      if (delivery.held !== undefined || gate?.holdsConfig(subscriber.pendingBytes())) this.hold(delivery, packet);
      else this.write(delivery, packet);
      return;
    }
    if (gate !== undefined && !gate.admit(packet, subscriber.pendingBytes(), this.videoTrack !== undefined)) {
      if (subscriber.kind === 'relay') this.options.onRelayFrameDropped?.();
      else this.stats.framesDropped++;
      return;
    }
    this.send(delivery, packet);
  }

  /** Keeps config for the subscriber's next media packet, replacing what was held of its kind. */
  private hold(delivery: Delivery, packet: MediaPacket): void {
    const held = (delivery.held ??= { metadata: undefined, video: undefined, audio: undefined });
    if (packet.kind === 'data') held.metadata = packet;
    else if (packet.kind === 'video') held.video = packet;
    else held.audio = packet;
  }

  /** Writes a media packet, after the config held for the subscriber (decoder config stamped with the packet's time). */
  private send(delivery: Delivery, packet: MediaPacket): void {
    const held = delivery.held;
    if (held !== undefined) {
      delivery.held = undefined;
      // onMetaData keeps its own time (0 from encoders): FFmpeg's FLV demuxer
      // reads one stamped later as a subtitle stream, not as metadata.
      if (held.metadata) this.write(delivery, held.metadata);
      for (const config of [held.video, held.audio]) {
        if (config) this.write(delivery, config.at(packet.timestamp));
      }
    }
    this.write(delivery, packet);
  }

  private write(delivery: Delivery, packet: MediaPacket): void {
    delivery.subscriber.write(packet);
    delivery.gate?.wrote(packet);
    this.bytesOutByKind[delivery.kindIndex]! += packet.body.length;
  }
}

/**
 * Whether an audio frame (not AAC's: Stream.frameTrack) describes a track
 * other than `track`: none yet, another codec (AAC to MP3), or, for a codec
 * without a sequence header (MP3, G.711: its frames alone describe it),
 * another format (an MP3 frame's header's rate, layer or channel mode: changesAudioFormat).
 */
function describesNewTrack(track: AudioTrackInfo | undefined, frame: AudioInspection): boolean {
  return track === undefined || track.codec !== frame.codec || changesAudioFormat(track, frame);
}
