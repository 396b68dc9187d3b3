// Every stream's HLS muxer, started by the first request for its playlist
// and stopped after --hls-idle-timeout-seconds without one (or that long
// after its stream ended), with the memory of all muxers kept under
// --hls-max-total-bytes.
import type { Config, HlsVariant } from '../config.ts';
import type { StreamHub } from '../hub/hub.ts';
import { streamId } from '../hub/names.ts';
import type { Stream, StreamSource } from '../hub/stream.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import { MP4_AUDIO_CODECS, MP4_VIDEO_CODECS } from '../mp4/init.ts';
import type { Logger } from '../telemetry/logger.ts';
import { adtsConfig } from '../mpegts/adts.ts';
import { HlsMuxer } from './muxer.ts';

type HlsConfig = Pick<
  Config,
  | 'hlsEnabled'
  | 'hlsLowLatency'
  | 'hlsVariant'
  | 'hlsSegmentSeconds'
  | 'hlsPartSeconds'
  | 'hlsWindowSegments'
  | 'hlsIdleTimeoutSeconds'
  | 'hlsMaxStreamBytes'
  | 'hlsMaxTotalBytes'
  | 'hlsRules'
>;

export interface HlsServerOptions {
  hub: StreamHub;
  config: HlsConfig;
  logger: Logger;
}

/** Why a stream has no HLS now. */
export type HlsRefusal = 'not_live' | 'hls_disabled' | 'unsupported_codec' | 'hls_capacity';

/** Plain counters for /metrics. */
export interface HlsStats {
  muxersStarted: number;
  bytes: number;
  requests: Record<'playlist' | 'init' | 'segment' | 'part', number>;
  refusedCapacity: number;
  /**
   * Bytes HLS players downloaded from a muxer after its stream ended (its
   * last segments), by the stream's source: the stream's own series are gone,
   * so /metrics adds them to its source's `_overflow`.
   */
  playerBytesAfterEnd: Record<StreamSource, number>;
}

/** A client that asked for a playlist within this window counts as one HLS player. */
const PLAYER_WINDOW_MS = 10_000;

export class HlsServer {
  readonly stats: HlsStats = {
    muxersStarted: 0,
    bytes: 0,
    requests: { playlist: 0, init: 0, segment: 0, part: 0 },
    refusedCapacity: 0,
    playerBytesAfterEnd: { publisher: 0, relay: 0 },
  };
  private readonly options: HlsServerOptions;
  /** By stream id; a muxer whose stream ended stays until its playlist expires. */
  private readonly entries = new Map<string, HlsMuxer>();
  private readonly sweep: NodeJS.Timeout;

  constructor(options: HlsServerOptions) {
    this.options = options;
    this.sweep = setInterval(() => this.closeIdle(performance.now()), 1000).unref();
  }

  /**
   * Whether HLS is served for app/key, as Low-Latency HLS, and in which
   * segment format. Low-Latency HLS is fMP4 (config.ts refuses it with
   * mpegts at one level): where a rule and the flags differ, the rule's own
   * setting wins.
   */
  settings(app: string, key: string): { enabled: boolean; lowLatency: boolean; variant: HlsVariant } {
    const { config } = this.options;
    const rule = ruleFor(config.hlsRules, app, key);
    const lowLatency = rule?.lowLatency ?? (rule?.variant === 'mpegts' ? false : config.hlsLowLatency);
    const variant = lowLatency ? 'fmp4' : (rule?.variant ?? config.hlsVariant);
    return { enabled: rule?.enabled ?? config.hlsEnabled, lowLatency, variant };
  }

  /** The live stream app/key, when HLS is served for it. */
  live(app: string, key: string): Stream | undefined {
    return this.settings(app, key).enabled ? this.options.hub.get(app, key) : undefined;
  }

  /** The running muxer of app/key, if any (media requests never start one). */
  running(app: string, key: string): HlsMuxer | undefined {
    return this.entries.get(streamId(app, key));
  }

  /** Resolves once app/key is live here: at once, or when the fleet has relayed it from its owner (if it can). */
  async arrival(app: string, key: string, signal: AbortSignal): Promise<void> {
    if (this.settings(app, key).enabled) await this.options.hub.arrival(app, key, 0, signal);
  }

  /** The muxer of app/key, started for a live stream that has none (or whose muxer outlived an earlier publish). */
  muxer(app: string, key: string): HlsMuxer | HlsRefusal {
    const settings = this.settings(app, key);
    if (!settings.enabled) return 'hls_disabled';
    const id = streamId(app, key);
    const stream = this.options.hub.get(app, key);
    const running = this.entries.get(id);
    if (running && (running.stream === stream || !stream)) return running;
    if (!stream) return 'not_live';
    if (!hasMp4Track(stream)) return 'unsupported_codec';
    if (running) this.remove(id, running);
    if (this.stats.bytes >= this.options.config.hlsMaxTotalBytes) {
      this.stats.refusedCapacity++;
      return 'hls_capacity';
    }
    const { config } = this.options;
    const variant = settings.variant === 'mpegts' && tsCarries(stream) ? 'mpegts' : 'fmp4';
    const muxer = new HlsMuxer({
      variant,
      lowLatency: settings.lowLatency,
      segmentSeconds: config.hlsSegmentSeconds,
      partSeconds: Math.min(config.hlsPartSeconds, config.hlsSegmentSeconds / 2),
      windowSegments: config.hlsWindowSegments,
      maxBytes: config.hlsMaxStreamBytes,
    });
    muxer.onBytes = (delta) => this.account(delta);
    const { source } = stream; // not the stream itself, which the muxer outlives
    muxer.onSentAfterEnd = (bytes) => (this.stats.playerBytesAfterEnd[source] += bytes);
    this.entries.set(id, muxer);
    this.stats.muxersStarted++;
    stream.subscribe(muxer, performance.now());
    this.options.logger.info({ stream: id, lowLatency: settings.lowLatency, variant }, 'hls started');
    return muxer;
  }

  /** Estimated HLS players of a stream (distinct clients polling its playlist), or undefined without a muxer. */
  players(stream: Stream): number | undefined {
    const muxer = this.entries.get(stream.id);
    return muxer?.stream === stream ? muxer.players(PLAYER_WINDOW_MS) : undefined;
  }

  get muxerCount(): number {
    return this.entries.size;
  }

  close(): void {
    clearInterval(this.sweep);
    for (const [id, muxer] of this.entries) this.remove(id, muxer);
  }

  /** Muxers nobody asked for within the idle timeout, and those whose stream ended that long ago, go. */
  closeIdle(now: number): void {
    const idleMs = this.options.config.hlsIdleTimeoutSeconds * 1000;
    for (const [id, muxer] of this.entries) {
      if (now - (muxer.endedAt ?? muxer.lastRequestAt) < idleMs) continue;
      this.remove(id, muxer);
      this.options.logger.info({ stream: id }, muxer.ended ? 'hls playlist expired' : 'hls stopped: no requests');
    }
  }

  private remove(id: string, muxer: HlsMuxer): void {
    this.entries.delete(id);
    muxer.stream?.unsubscribe(muxer);
    this.account(-muxer.bytes);
    muxer.onBytes = () => undefined;
  }

  /** Keeps all muxers under --hls-max-total-bytes: the biggest drops its oldest segment first. */
  private account(delta: number): void {
    this.stats.bytes += delta;
    if (delta <= 0) return;
    while (this.stats.bytes > this.options.config.hlsMaxTotalBytes) {
      let biggest: HlsMuxer | undefined;
      for (const muxer of this.entries.values()) if (!biggest || muxer.bytes > biggest.bytes) biggest = muxer;
      if (!biggest?.dropOldest()) return;
    }
  }
}

/**
 * Whether MPEG-TS carries every track the stream has: H.264 or HEVC, AAC
 * that ADTS describes, MP3. Players take AV1 and Opus in TS poorly, if at
 * all: such a stream, and one whose AAC ADTS cannot describe, gets fMP4.
 */
function tsCarries(stream: Stream): boolean {
  const { videoTrack, audioTrack, audioHeader } = stream;
  if (videoTrack && !TS_VIDEO_CODECS.has(videoTrack.codec)) return false;
  if (!audioTrack || audioTrack.codec === 'mp3') return true;
  if (audioTrack.codec !== 'aac' || !audioHeader) return false;
  return typeof adtsConfig(audioHeader.body.subarray(audioHeader.payloadOffset)) !== 'string';
}

const TS_VIDEO_CODECS: ReadonlySet<string> = new Set(['h264', 'hevc']);

/** Whether the stream has a track fMP4 can carry (or has not said yet what it has). */
function hasMp4Track(stream: Stream): boolean {
  const { videoTrack, audioTrack } = stream;
  if (!videoTrack && !audioTrack) return true;
  return (
    (videoTrack !== undefined && MP4_VIDEO_CODECS.has(videoTrack.codec)) ||
    (audioTrack !== undefined && MP4_AUDIO_CODECS.has(audioTrack.codec))
  );
}
