import { EventEmitter } from 'node:events';
import { boundedWait } from '../bounded-wait.ts';
import { invalidStreamName, streamId } from './names.ts';
import { Stream, type PublisherInfo, type StreamOptions } from './stream.ts';
import type { Subscriber } from './subscriber.ts';

export class PublishRefused extends Error {
  override name = 'PublishRefused';
  /** The onStatus code the publisher is sent. */
  readonly code: 'NetStream.Publish.BadName';
  constructor(message: string) {
    super(message);
    this.code = 'NetStream.Publish.BadName';
  }
}

/**
 * Why a stream ended: its publisher stopped or hung up, was kicked through
 * the API, had its credential revoked, made no progress, broke the protocol,
 * lost its fleet claim to another pod, or the server is shutting down.
 */
export const STREAM_END_REASONS = [
  'publisher_closed',
  'kicked',
  'revoked',
  'timed_out',
  'protocol_error',
  'claim_lost',
  'shutdown',
] as const;
export type StreamEndReason = (typeof STREAM_END_REASONS)[number];

export interface HubEvents {
  publish: [Stream];
  /** A live stream's decoder config or onMetaData arrived (stream.videoTrack, .audioTrack, .metadataValues). */
  described: [Stream];
  unpublish: [Stream, StreamEndReason];
}

export interface HubOptions extends StreamOptions {
  playerStallTimeoutMs: number;
  /** A player whose socket takes less than this, on average over the stall timeout, is stalled; 0: any progress counts. */
  playerMinBytesPerSecond?: number;
}

/** Where a stream that is not live here may be found: another pod of the fleet (fleet/relays.ts). */
export interface RemoteStreams {
  /**
   * Starts bringing app/key into this hub when it is live elsewhere. When it is
   * on its way: a signal that aborts if it ends before it arrives (the owner
   * answered 404 or could not be reached); undefined when it is not.
   */
  pull(app: string, key: string): AbortSignal | undefined;
  /** How long a subscriber waits for a pulled stream to arrive. */
  readonly arrivalMs: number;
}

/**
 * The registry in the middle: one publisher per app/key, any number of
 * subscribers. Protocol modules come here to publish and play; recording,
 * snapshots and telemetry listen to its events. Not a singleton: a process
 * (or a test) makes as many hubs as it likes.
 */
export class StreamHub extends EventEmitter<HubEvents> {
  private readonly streams = new Map<string, Stream>();
  private readonly waiters = new Map<string, Set<(stream: Stream) => void>>();
  private readonly options: HubOptions;
  private readonly streamOptions: StreamOptions;
  private readonly sweep: NodeJS.Timeout;
  /** Players closed as stalled (rtmpd_players_stalled_closed_total). */
  stalledClosed = 0;
  /** Relays to other pods of a fleet closed as stalled (rtmpd_fleet_relays_stalled_closed_total). */
  relaysStalledClosed = 0;
  /** Frames not sent to relays to other pods of a fleet, over all streams (Stream's onRelayFrameDropped). */
  relayFramesDropped = 0;
  /** Set in a fleet: subscribers of a stream that is not live here get it from its owner. */
  remote: RemoteStreams | undefined;

  constructor(options: HubOptions) {
    super();
    this.options = options;
    this.streamOptions = {
      ...options,
      onDescribed: (stream) => this.emit('described', stream),
      onRelayFrameDropped: () => this.relayFramesDropped++,
    };
    this.sweep = setInterval(() => this.closeStalled(), Math.min(1000, options.playerStallTimeoutMs)).unref();
  }

  /** Claims app/key for a publisher; a live key is never taken over. */
  publish(app: string, key: string, publisher: PublisherInfo): Stream {
    const invalid = invalidStreamName(app, key);
    if (invalid) throw new PublishRefused(invalid);
    const id = streamId(app, key);
    if (this.streams.has(id)) throw new PublishRefused(`stream ${id} is already being published`);
    const stream = new Stream(app, key, publisher, this.streamOptions);
    this.streams.set(id, stream);
    this.emit('publish', stream);
    const waiting = this.waiters.get(id);
    this.waiters.delete(id);
    for (const resolve of waiting ?? []) resolve(stream);
    return stream;
  }

  unpublish(stream: Stream, reason: StreamEndReason = 'publisher_closed'): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    try {
      stream.end('unpublished');
    } finally {
      this.emit('unpublish', stream, reason);
    }
  }

  get(app: string, key: string): Stream | undefined {
    return this.streams.get(streamId(app, key));
  }

  /** Looks a stream up by its API id, `rtmp/<app>/<key>`. */
  byId(id: string): Stream | undefined {
    return this.streams.get(id);
  }

  list(): Stream[] {
    return [...this.streams.values()];
  }

  get size(): number {
    return this.streams.size;
  }

  /** Subscribes to app/key, waiting up to `waitMs` for a publisher; undefined when none came. */
  async subscribe(app: string, key: string, subscriber: Subscriber, waitMs: number, signal?: AbortSignal): Promise<Stream | undefined> {
    const stream = await this.arrival(app, key, waitMs, signal);
    if (!stream || signal?.aborted) return undefined;
    stream.subscribe(subscriber, performance.now());
    return stream;
  }

  /**
   * app/key when it is live here; else, in a fleet, pulled from the pod that
   * owns it, or waited for up to `waitMs`. Undefined when it did not come.
   */
  async arrival(app: string, key: string, waitMs: number, signal?: AbortSignal): Promise<Stream | undefined> {
    const stream = this.get(app, key);
    if (stream) return stream;
    const id = streamId(app, key);
    const remote = this.remote;
    const failed = remote?.pull(app, key);
    if (!remote || !failed) return waitMs > 0 ? this.waitFor(id, waitMs, signal) : undefined;
    // The owner's answer is waited for even without a play wait; a pull that fails
    // leaves only what is left of the subscriber's own wait.
    const started = performance.now();
    const relayed = await this.waitFor(id, Math.max(waitMs, remote.arrivalMs), signal ? AbortSignal.any([signal, failed]) : failed);
    if (relayed || signal?.aborted || !failed.aborted) return relayed;
    const left = waitMs - (performance.now() - started);
    return left > 0 ? this.waitFor(id, left, signal) : undefined;
  }

  /** Whether a subscriber waits for app/key to be published (--play-wait-seconds). */
  awaited(id: string): boolean {
    return this.waiters.has(id);
  }

  /** Ends every stream, e.g. on SIGTERM. */
  closeAll(): void {
    clearInterval(this.sweep);
    for (const stream of this.list()) {
      stream.publisher.close('shutdown');
      this.unpublish(stream, 'shutdown');
    }
  }

  private waitFor(id: string, waitMs: number, signal?: AbortSignal): Promise<Stream | undefined> {
    return boundedWait<Stream | undefined>(waitMs, signal, { timedOut: undefined, aborted: undefined }, (settle) => {
      const waiting = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, waiting);
      waiting.add(settle);
      return () => {
        waiting.delete(settle);
        if (waiting.size === 0 && this.waiters.get(id) === waiting) this.waiters.delete(id);
      };
    });
  }

  private closeStalled(): void {
    const now = performance.now();
    for (const stream of this.streams.values()) {
      const closed = stream.closeStalled(now, this.options.playerStallTimeoutMs, this.options.playerMinBytesPerSecond);
      this.stalledClosed += closed.players;
      this.relaysStalledClosed += closed.relays;
    }
  }
}
