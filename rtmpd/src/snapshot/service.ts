import { join } from 'node:path';
import { MediaParseError } from '../codec/errors.ts';
import type { Config } from '../config.ts';
import type { StreamHub } from '../hub/hub.ts';
import { ffmpegMaxPixels, pictureOverLimit } from '../ffmpeg/picture-limit.ts';
import type { Stream } from '../hub/stream.ts';
import type { Logger } from '../telemetry/logger.ts';
import { traceSnapshot } from '../telemetry/tracing.ts';
import { decodeJpeg, DecodeError, type KeyframeFormat } from './decoder.ts';
import { pruneTimestamped, timestampedName, writeFileAtomic } from './files.ts';
import { standaloneKeyframe, type KeyframeProblem } from './keyframe.ts';
import { BoundedPool, PoolBusyError } from './pool.ts';

export type SnapshotErrorCode = 'snapshots_disabled' | KeyframeProblem | 'picture_too_large' | 'busy' | 'decode_failed';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
  readonly code: SnapshotErrorCode;
  constructor(code: SnapshotErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface Snapshot {
  jpeg: Buffer;
  /** Stream.keyframeSeq of the keyframe it shows. */
  keyframeSeq: number;
}

/** Counters for telemetry, read when scraped. */
export interface SnapshotStats {
  decodes: number;
  cacheHits: number;
  decodeFailures: number;
  busyRefusals: number;
  /** Requests refused without a decode: the stream's picture is over --max-decode-pixels. */
  pictureRefusals: number;
  fileErrors: number;
}

export type SnapshotConfig = Pick<
  Config,
  | 'keyframeDir'
  | 'snapshotEnabled'
  | 'snapshotIntervalSeconds'
  | 'snapshotKeep'
  | 'snapshotWidth'
  | 'snapshotQuality'
  | 'snapshotConcurrency'
  | 'snapshotTimeoutSeconds'
  | 'ffmpegPath'
  | 'maxDecodePixels'
>;

export interface SnapshotServiceOptions {
  hub: StreamHub;
  config: SnapshotConfig;
  logger: Logger;
  /** Called after every ffmpeg decode with its duration (telemetry). */
  onDecode?: (seconds: number, ok: boolean) => void;
}

const QUEUE_WAIT_MS = 5_000;
const QUEUED_PER_SLOT = 8;
// The raw keyframe on disk follows the stream at most this often.
const KEYFRAME_FILE_PERIOD_MS = 1_000;

interface StreamSnapshots {
  /** The decode of keyframe `seq`, shared by every request that wants it. */
  seq: number;
  jpeg: Promise<Buffer> | undefined;
  /** keyframeSeq last written to latest.<codec>. */
  keyframeFileSeq: number;
  /** keyframeSeq whose failure to decode was last logged. */
  failureLoggedSeq: number;
  /** The picture size last logged as over --max-decode-pixels: logged once per stream, not per request or interval. */
  oversizeLogged: string | undefined;
  dir: string;
}

/**
 * JPEG snapshots from each live stream's last keyframe. A keyframe is decoded
 * at most once however many clients ask; decodes run in a bounded pool.
 *
 * Under `keyframeDir/<app>/<key>/` it keeps `latest.<codec>` (the raw keyframe
 * as a standalone elementary stream), `latest.jpg` and, with an interval set,
 * timestamped JPEGs. These files outlive the stream on purpose: the directory
 * is a volume, and "the last picture of a camera that went offline" is what a
 * dashboard wants to show. A new publish of the same key overwrites them.
 */
export class SnapshotService {
  readonly stats: SnapshotStats = { decodes: 0, cacheHits: 0, decodeFailures: 0, busyRefusals: 0, pictureRefusals: 0, fileErrors: 0 };
  private readonly options: SnapshotServiceOptions;
  private readonly config: SnapshotConfig;
  private readonly logger: Logger;
  private readonly pool: BoundedPool;
  private readonly streams = new Map<Stream, StreamSnapshots>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onUnpublish = (stream: Stream): void => void this.streams.delete(stream);

  constructor(options: SnapshotServiceOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger.child({ component: 'snapshot' });
    const concurrency = this.config.snapshotConcurrency;
    this.pool = new BoundedPool({ concurrency, maxQueued: concurrency * QUEUED_PER_SLOT, maxWaitMs: QUEUE_WAIT_MS });
    if (!this.config.snapshotEnabled) return;
    options.hub.on('unpublish', this.onUnpublish);
    this.timers.push(setInterval(() => this.writeKeyframes(), KEYFRAME_FILE_PERIOD_MS).unref());
    if (this.config.snapshotIntervalSeconds > 0) {
      this.timers.push(setInterval(() => this.writeTimestamped(), this.config.snapshotIntervalSeconds * 1000).unref());
    }
  }

  /** The JPEG of the stream's current last keyframe; throws SnapshotError. */
  async get(stream: Stream): Promise<Snapshot> {
    if (!this.config.snapshotEnabled)
      throw new SnapshotError('snapshots_disabled', 'snapshots are disabled on this server (--snapshot-enabled false)');
    const state = this.state(stream);
    let keyframe;
    try {
      keyframe = standaloneKeyframe(stream);
    } catch (err) {
      // Decoder config or a keyframe the relay tolerated but that cannot be turned into a picture.
      throw this.toSnapshotError(err, stream, state, stream.keyframeSeq);
    }
    if (typeof keyframe === 'string') throw new SnapshotError(keyframe, problemMessage(stream, keyframe));
    this.refuseOversize(stream, state);
    if (state.jpeg && state.seq === keyframe.seq) {
      this.stats.cacheHits++;
      return { jpeg: await state.jpeg, keyframeSeq: keyframe.seq };
    }
    const { seq } = keyframe;
    // Every request that joins this decode gets its answer, a failure as the same SnapshotError.
    const jpeg: Promise<Buffer> = traceSnapshot(stream, () => this.pool.run(() => this.decode(keyframe.format, keyframe.data))).catch(
      (err: unknown) => {
        // A failed decode is not cached: the next request tries again.
        if (state.jpeg === jpeg) state.jpeg = undefined;
        throw this.toSnapshotError(err, stream, state, seq);
      },
    );
    state.seq = seq;
    state.jpeg = jpeg;
    const bytes = await jpeg;
    void this.writeFile(join(state.dir, 'latest.jpg'), bytes);
    return { jpeg: bytes, keyframeSeq: seq };
  }

  /** Stops the timers and lets running decodes finish. */
  close(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.options.hub.off('unpublish', this.onUnpublish);
  }

  private state(stream: Stream): StreamSnapshots {
    let state = this.streams.get(stream);
    if (state) return state;
    state = {
      seq: -1,
      jpeg: undefined,
      keyframeFileSeq: -1,
      failureLoggedSeq: -1,
      oversizeLogged: undefined,
      dir: join(this.config.keyframeDir, stream.app, stream.key),
    };
    // An ended stream's unpublish event has passed, so it is never tracked (it would leak).
    if (!stream.isEnded) this.streams.set(stream, state);
    return state;
  }

  /**
   * Throws picture_too_large, before any ffmpeg runs, for a stream whose sequence header declares a picture
   * over --max-decode-pixels: its decoder would allocate what the publisher chose (README, Snapshots).
   */
  private refuseOversize(stream: Stream, state: StreamSnapshots): void {
    const { maxDecodePixels } = this.config;
    const picture = pictureOverLimit(stream.videoTrack, maxDecodePixels);
    if (picture === undefined) return;
    this.stats.pictureRefusals++;
    if (state.oversizeLogged !== picture) {
      state.oversizeLogged = picture;
      this.logger.warn({ stream: stream.id, picture, maxDecodePixels }, 'snapshot: not decoded, the picture is over --max-decode-pixels');
    }
    throw new SnapshotError(
      'picture_too_large',
      `stream ${stream.id} declares a picture of ${picture}, more than the ${maxDecodePixels} pixels this server decodes (--max-decode-pixels)`,
    );
  }

  private async decode(format: KeyframeFormat, keyframe: Buffer): Promise<Buffer> {
    this.stats.decodes++;
    const { ffmpegPath, snapshotWidth: width, snapshotQuality: quality, snapshotTimeoutSeconds, maxDecodePixels } = this.config;
    const maxPixels = ffmpegMaxPixels(maxDecodePixels);
    const started = performance.now();
    let ok = false;
    try {
      // One decode of a 1080p IDR takes ~0.1 s of CPU; the default 10 s means ffmpeg is
      // wedged or the machine is drowning, and the caller is better off with a 503.
      const jpeg = await decodeJpeg({ ffmpegPath, format, keyframe, width, quality, maxPixels, timeoutMs: snapshotTimeoutSeconds * 1000 });
      ok = true;
      return jpeg;
    } finally {
      this.options.onDecode?.((performance.now() - started) / 1000, ok);
    }
  }

  /** The answer for a decode that failed; logged once per keyframe, however many requests ask for it. */
  private toSnapshotError(err: unknown, stream: Stream, state: StreamSnapshots, seq: number): SnapshotError {
    if (err instanceof PoolBusyError) {
      this.stats.busyRefusals++;
      return new SnapshotError('busy', `snapshot decoder busy: ${err.message}; retry shortly`);
    }
    this.stats.decodeFailures++;
    if (state.failureLoggedSeq !== seq) {
      state.failureLoggedSeq = seq;
      this.logger.warn({ err, stream: stream.id, keyframeSeq: seq }, 'snapshot decode failed');
    }
    const reason = err instanceof DecodeError || err instanceof MediaParseError ? err.message : String(err);
    return new SnapshotError('decode_failed', `could not decode the last keyframe: ${reason}`);
  }

  private writeKeyframes(): void {
    for (const stream of this.options.hub.list()) {
      if (stream.keyframeSeq === 0) continue;
      const state = this.state(stream);
      if (state.keyframeFileSeq === stream.keyframeSeq) continue;
      let keyframe;
      try {
        keyframe = standaloneKeyframe(stream);
      } catch (err) {
        this.logger.debug({ err, stream: stream.id }, 'last keyframe not convertible');
        continue;
      }
      if (typeof keyframe === 'string') continue;
      state.keyframeFileSeq = keyframe.seq;
      void this.writeFile(join(state.dir, `latest.${keyframe.extension}`), keyframe.data);
    }
  }

  private writeTimestamped(): void {
    for (const stream of this.options.hub.list()) {
      if (stream.keyframeSeq === 0) continue;
      const dir = this.state(stream).dir;
      this.get(stream)
        .then(async ({ jpeg }) => {
          await this.writeFile(join(dir, timestampedName(new Date())), jpeg);
          await pruneTimestamped(dir, this.config.snapshotKeep);
        })
        .catch((err: unknown) => this.logger.debug({ err, stream: stream.id }, 'interval snapshot skipped'));
    }
  }

  private async writeFile(path: string, data: Buffer): Promise<void> {
    try {
      await writeFileAtomic(path, data);
    } catch (err) {
      this.stats.fileErrors++;
      this.logger.error({ err, path }, 'cannot write snapshot file');
    }
  }
}

/** The original flux-rtmpd's troubleshooting list, answered for this stream. */
function problemMessage(stream: Stream, problem: KeyframeProblem): string {
  switch (problem) {
    case 'no_video':
      return `stream ${stream.id} is live but no video has been received yet (an audio-only publisher has no snapshot)`;
    case 'no_keyframe':
      return `stream ${stream.id} is live but no keyframe has been received yet; wait for the encoder's next keyframe (keyframe interval)`;
    case 'unsupported_codec':
      return `stream ${stream.id} carries VP9, which snapshots do not support (H.264, HEVC and AV1 are)`;
  }
}
