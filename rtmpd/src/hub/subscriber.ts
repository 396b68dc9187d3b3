import type { MediaPacket } from './packet.ts';
import type { Stream } from './stream.ts';

/** What is at the other end of a subscription. */
export const SUBSCRIBER_KINDS = ['rtmp', 'http-flv', 'recorder'] as const;
export type SubscriberKind = (typeof SUBSCRIBER_KINDS)[number];
/** The kinds with a viewer at the other end; the others keep the stream (a recording). */
export const PLAYER_KINDS: readonly SubscriberKind[] = ['rtmp', 'http-flv'];

export type CloseReason = 'unpublished' | 'stalled' | 'shutdown' | 'error';

/**
 * How the hub delivers to a subscriber that falls behind.
 * - `lossless`: every packet, however long its queue (a recording, an HLS
 *   segmenter: what they skip is lost for good); never closed as stalled.
 * - `skip-to-keyframe`: a player. Past --player-max-buffer-bytes it gets
 *   nothing but decoder config until the next keyframe, and a queue that does
 *   not move for --player-stall-timeout-seconds closes it.
 */
export type DeliveryPolicy = 'lossless' | 'skip-to-keyframe';

/**
 * Anything that receives a stream's packets: an RTMP player, an HTTP-FLV
 * response, the recorder. write() runs on the publisher's hot path for every
 * packet, so it must queue and return: never await, never throw.
 */
export interface Subscriber {
  readonly kind: SubscriberKind;
  readonly delivery: DeliveryPolicy;
  /**
   * Called once, on subscribe, before the stream's metadata, decoder config
   * and cached GOP are written: whatever the subscriber sends first (a
   * player's Play.Start, an FLV header announcing the stream's tracks).
   */
  begin(stream: Stream): void;
  /** Bytes accepted by write() that the socket or file has not yet taken. */
  pendingBytes(): number;
  write(packet: MediaPacket): void;
  /** The stream ended, or the hub gave up on this subscriber. */
  close(reason: CloseReason): void;
}

/**
 * Keeps one slow subscriber from costing memory or delaying anyone: once its
 * queue passes the bound it gets nothing but decoder config until the next
 * keyframe (or, for audio-only streams, until its queue has drained), so it
 * resumes on a decodable frame instead of a smeared one.
 */
export class DeliveryGate {
  private skipping = false;
  dropped = 0;
  /** performance.now() when the queue was last empty or shrinking. */
  lastProgressAt: number;
  private lastPending = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number, now: number) {
    this.maxBytes = maxBytes;
    this.lastProgressAt = now;
  }

  admit(packet: MediaPacket, pending: number, streamHasVideo: boolean): boolean {
    if (packet.sequenceHeader || packet.kind === 'data') return true;
    if (this.skipping) {
      const canResume = streamHasVideo ? packet.kind === 'video' && packet.keyframe && pending < this.maxBytes / 2 : pending === 0;
      if (!canResume) {
        this.dropped++;
        return false;
      }
      this.skipping = false;
      return true;
    }
    if (pending > this.maxBytes) {
      this.skipping = true;
      this.dropped++;
      return false;
    }
    return true;
  }

  /** Records queue progress; returns how long the queue has been stuck. */
  stuckFor(pending: number, now: number): number {
    if (pending === 0 || pending < this.lastPending) this.lastProgressAt = now;
    this.lastPending = pending;
    return now - this.lastProgressAt;
  }
}
