// Adaptive bitrate: each stream published here that a transcodeRules rule
// matches gets one ffmpeg (transcoder.ts) that reads it as FLV on its stdin
// and writes each rendition as FLV to a pipe of its own (pipes.ts), published
// here as <app>/<key>_<name>, ordinary streams from then on. Rules are read at each publish, as
// forwardRules are. Never transcoded: a stream relayed from its owner pod
// (the owner transcodes), and a rendition itself (no loops). At most
// --transcode-max-processes run at once; a stream past it is refused with a
// log line and a count, never queued. So is a stream whose video sequence
// header declares a picture over --max-decode-pixels, whenever it does: ffmpeg
// starts only once the source's video is described (or VIDEO_WAIT_MS passed),
// and its decoder has -max_pixels too (ffmpeg-args.ts).
//
// ffmpeg needs no credential and no network: its pipes are its only way in
// and out, and nothing on its command line opens a stream. In a fleet a
// rendition takes its claim as an RTMP publish does (`claim`), so players on
// other pods are routed here. A rendition is played under its source's play
// rules (`playedAs`), so a player's credential for the source opens every
// rung of the ladder.
//
// The ffmpeg supervisor and its pipes are loaded with the first transcode: a
// server without transcodeRules does not hold them (idle memory, README "Where
// the memory goes").
import { boundedWait } from '../bounded-wait.ts';
import type { Config, Rendition } from '../config.ts';
import type { PublishClaim } from '../fleet/claims.ts';
import { ffmpegMaxPixels, pictureOverLimit } from '../ffmpeg/picture-limit.ts';
import type { StreamHub } from '../hub/hub.ts';
import { invalidStreamName, streamId } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import type { Logger } from '../telemetry/logger.ts';
import { transcodeArgs } from './ffmpeg-args.ts';
import {
  TRANSCODE_FAILURES,
  TRANSCODE_REFUSALS,
  TRANSCODE_STATES,
  type TranscodeFailure,
  type TranscodeRefusal,
  type TranscodeState,
  type TranscodeView,
} from './transcode-view.ts';
import type { TranscodePipes, Transcoder } from './transcoder.ts';

/** The ffmpeg supervisor and the plumbing of its pipes. */
const loadSupervisor = () => Promise.all([import('./transcoder.ts'), import('./pipes.ts')]);

type TranscodesConfig = Pick<Config, 'transcodeRules' | 'transcodeFfmpegPath' | 'transcodeMaxProcesses' | 'maxDecodePixels'>;

/**
 * How long a transcode waits for its source's video sequence header, whose picture size decides whether
 * it may run, before ffmpeg starts without it (an encoder sends it right after publishing; an audio-only
 * source never does).
 */
const VIDEO_WAIT_MS = 3000;

export interface TranscodesOptions {
  hub: StreamHub;
  /** Read at each publish (the rules, the path and the cap change live). */
  config: TranscodesConfig;
  logger: Logger;
}

/** Counted since start, for /metrics. */
export interface TranscodeStats {
  starts: number;
  failures: Record<TranscodeFailure, number>;
  /** Streams not transcoded: --transcode-max-processes were running, or the picture is over --max-decode-pixels. */
  refused: Record<TranscodeRefusal, number>;
}

/** Where a rendition another pod of a fleet makes is waited for (fleet/fleet.ts). */
export interface RemoteRenditions {
  /** Resolves once the rendition app/key of app/`source` is relayed here from the pod that transcodes it, or is not coming; within `waitMs`. */
  arrival(app: string, source: string, key: string, waitMs: number, signal: AbortSignal): Promise<void>;
}

/** A rendition as the multivariant playlist lists it. */
export interface RenditionInfo {
  key: string;
  rendition: Rendition;
}

interface Transcode {
  source: Stream;
  renditions: RenditionInfo[];
  /** The renditions as the API shows them. */
  views: TranscodeView['renditions'];
  log: Logger;
  /** Ends start()'s wait for the source's video sequence header. */
  videoDescribed: (() => void) | undefined;
  /** Undefined while the supervisor module loads. */
  transcoder: Transcoder | undefined;
  /** Aborted when the ffmpeg now starting or running fails, or the transcode ends: nobody waits on for its renditions. */
  attempt: AbortController;
}

export class Transcodes {
  readonly stats: TranscodeStats = {
    starts: 0,
    failures: Object.fromEntries(TRANSCODE_FAILURES.map((reason) => [reason, 0])) as Record<TranscodeFailure, number>,
    refused: Object.fromEntries(TRANSCODE_REFUSALS.map((reason) => [reason, 0])) as Record<TranscodeRefusal, number>,
  };
  private readonly o: TranscodesOptions;
  private readonly bySource = new Map<Stream, Transcode>();
  /** By the stream id of each rendition. */
  private readonly byRendition = new Map<string, Transcode>();
  private supervisor: ReturnType<typeof loadSupervisor> | undefined;
  /** Set in a fleet: a rendition of a source another pod owns is waited for on that pod. */
  remote: RemoteRenditions | undefined;
  /** Set in a fleet: a rendition is published here only once it holds its claim, as an RTMP publish does. */
  claim: PublishClaim | undefined;

  constructor(o: TranscodesOptions) {
    this.o = o;
    o.hub.on('publish', this.onPublish);
    o.hub.on('described', this.onDescribed);
    o.hub.on('unpublish', this.onUnpublish);
    process.on('exit', this.killAll);
  }

  /**
   * The source key a rendition's players are authorized as; undefined for any other stream. From the
   * rules in force (app/key is <source>_<name> of the ladder they make of <source>), not from the
   * transcodes running here: a pod of a fleet that relays a rendition decides as its owner does.
   */
  readonly playedAs = (app: string, key: string): string | undefined => {
    for (const rule of this.o.config.transcodeRules)
      for (const { name } of rule.renditions) {
        if (!key.endsWith(`_${name}`)) continue;
        const source = key.slice(0, -(name.length + 1));
        if (source && this.ladderOf(app, source).some((rendition) => rendition.key === key)) return source;
      }
    return undefined;
  };

  /**
   * The renditions the rules in force make of app/key (those whose name is
   * valid: the key plus the suffix may pass 128 characters). From the config,
   * so every pod of a fleet knows a source's ladder.
   */
  readonly ladderOf = (app: string, key: string): RenditionInfo[] =>
    (ruleFor(this.o.config.transcodeRules, app, key)?.renditions ?? [])
      .map((rendition) => ({ key: `${key}_${rendition.name}`, rendition }))
      .filter((rendition) => invalidStreamName(app, rendition.key) === undefined);

  /**
   * Resolves once the rendition app/key is live here, or when it is not coming (see `renditionPublished`);
   * at most `waitMs`. In a fleet, a rendition of a source another pod owns is waited for there (`remote`).
   */
  readonly renditionArrival = async (app: string, key: string, waitMs: number, signal: AbortSignal): Promise<void> => {
    if (this.byRendition.has(streamId(app, key))) return this.renditionPublished(app, key, waitMs, signal);
    const source = this.playedAs(app, key);
    if (source !== undefined) await this.remote?.arrival(app, source, key, waitMs, signal);
  };

  /**
   * Resolves once the rendition app/key a transcode here makes is published, or when it is not coming: no
   * transcode here makes it (none matches, or the cap refused it), its ffmpeg is in backoff after a
   * failure, or it fails meanwhile. At most `waitMs`.
   */
  readonly renditionPublished = async (app: string, key: string, waitMs: number, signal: AbortSignal): Promise<void> => {
    const transcode = this.byRendition.get(streamId(app, key));
    if (!transcode) return;
    // No transcoder yet: the supervisor module loads, and ffmpeg starts next.
    const state = transcode.transcoder?.state ?? 'starting';
    if (state === 'backoff' || state === 'stopped') return;
    await this.o.hub.arrival(app, key, waitMs, AbortSignal.any([signal, transcode.attempt.signal]));
  };

  /** The source a rendition stream is made from. */
  sourceOf(stream: Stream): Stream | undefined {
    const transcode = this.byRendition.get(stream.id);
    return transcode && stream !== transcode.source ? transcode.source : undefined;
  }

  viewOf(stream: Stream): TranscodeView | undefined {
    const transcode = this.bySource.get(stream);
    if (!transcode) return undefined;
    return transcode.transcoder?.view() ?? { state: 'starting', renditions: transcode.views, starts: 0, last_error: null };
  }

  /** The pid of the source's ffmpeg while one runs. */
  pidOf(stream: Stream): number | undefined {
    return this.bySource.get(stream)?.transcoder?.pid;
  }

  /** Transcodes now, by state. */
  countsByState(): Record<TranscodeState, number> {
    const counts = Object.fromEntries(TRANSCODE_STATES.map((state) => [state, 0])) as Record<TranscodeState, number>;
    for (const { transcoder } of this.bySource.values()) counts[transcoder?.state ?? 'starting']++;
    return counts;
  }

  /** Stops every ffmpeg; resolves once all have exited. */
  async close(): Promise<void> {
    this.o.hub.off('publish', this.onPublish);
    this.o.hub.off('described', this.onDescribed);
    this.o.hub.off('unpublish', this.onUnpublish);
    await Promise.all([...this.bySource.keys()].map((stream) => this.end(stream)));
    process.off('exit', this.killAll);
  }

  private readonly onPublish = (stream: Stream): void => {
    if (stream.publisher.protocol === 'transcode') return this.byRendition.get(stream.id)?.transcoder?.renditionLive();
    // A rendition's name published from outside is no source either: no loops.
    if (stream.publisher.protocol === 'relay' || this.byRendition.has(stream.id)) return;
    const rule = ruleFor(this.o.config.transcodeRules, stream.app, stream.key);
    if (!rule) return;
    const log = this.o.logger.child({ stream: stream.id });
    const max = this.o.config.transcodeMaxProcesses;
    if (this.bySource.size >= max) {
      this.stats.refused.max_processes++;
      return void log.warn({ max }, 'transcode: not transcoded, --transcode-max-processes are running');
    }
    const renditions = this.ladderOf(stream.app, stream.key);
    if (renditions.length < rule.renditions.length)
      log.error(
        { left: rule.renditions.length - renditions.length },
        'transcode: renditions left out: the key with their suffix passes 128 characters',
      );
    if (renditions.length === 0) return;
    const transcode: Transcode = {
      source: stream,
      renditions,
      views: renditions.map(({ key, rendition }) => ({
        name: rendition.name,
        stream_id: streamId(stream.app, key),
        height: rendition.height,
        bitrate_kbps: rendition.videoBitrate + rendition.audioBitrate,
      })),
      log,
      videoDescribed: undefined,
      transcoder: undefined,
      attempt: new AbortController(),
    };
    this.bySource.set(stream, transcode);
    for (const { key } of renditions) this.byRendition.set(streamId(stream.app, key), transcode);
    void this.start(transcode);
  };

  /** A source's video is described: a picture over --max-decode-pixels ends its transcode (running or not yet started), counted. */
  private readonly onDescribed = (stream: Stream): void => {
    const transcode = this.bySource.get(stream);
    if (!transcode || stream.videoTrack === undefined) return;
    const maxDecodePixels = this.o.config.maxDecodePixels;
    const picture = pictureOverLimit(stream.videoTrack, maxDecodePixels);
    if (picture === undefined) return transcode.videoDescribed?.();
    this.stats.refused.picture_too_large++;
    transcode.log.warn({ picture, maxDecodePixels }, 'transcode: not transcoded, the picture is over --max-decode-pixels');
    void this.end(stream);
  };

  private readonly onUnpublish = (stream: Stream): void => void this.end(stream);

  private async start(transcode: Transcode): Promise<void> {
    const [[{ Transcoder }, pipes]] = await Promise.all([(this.supervisor ??= loadSupervisor()), this.videoDescribed(transcode)]);
    const { source, renditions, log } = transcode;
    if (this.bySource.get(source) !== transcode) return; // ended or refused meanwhile
    const ladder = renditions.map(({ rendition }) => rendition);
    transcode.transcoder = new Transcoder({
      ffmpegPath: this.o.config.transcodeFfmpegPath,
      args: transcodeArgs(ladder, ffmpegMaxPixels(this.o.config.maxDecodePixels), source.videoTrack?.fps),
      renditions: transcode.views,
      plumb: (io) => this.plumb(transcode, io, pipes),
      log,
      onStart: () => {
        this.stats.starts++;
        if (transcode.attempt.signal.aborted) transcode.attempt = new AbortController();
      },
      onFailure: (reason) => {
        this.stats.failures[reason]++;
        transcode.attempt.abort();
      },
    });
    transcode.transcoder.start();
  }

  /** Feeds a started ffmpeg the source, and publishes what it writes of each rendition. */
  private plumb(
    transcode: Transcode,
    { input, outputs }: TranscodePipes,
    { SourceFeed, RenditionPublish }: typeof import('./pipes.ts'),
  ): void {
    const { source, renditions, log } = transcode;
    const feed = new SourceFeed(input, () => {
      log.warn('transcode: ffmpeg stopped reading its source; killing it');
      transcode.transcoder?.kill();
    });
    source.subscribe(feed, performance.now());
    input.once('close', () => source.unsubscribe(feed));
    const from = `ffmpeg pid ${transcode.transcoder?.pid}`;
    renditions.forEach(({ key }, i) => {
      new RenditionPublish({ hub: this.o.hub, app: source.app, key, output: outputs[i]!, claim: this.claim, from, log });
    });
  }

  /** Resolves once the source's video is described within the limit (onDescribed), the transcode ends, or VIDEO_WAIT_MS passed. */
  private videoDescribed(transcode: Transcode): Promise<void> {
    if (transcode.source.videoTrack !== undefined) return Promise.resolve();
    return boundedWait(VIDEO_WAIT_MS, transcode.attempt.signal, { timedOut: undefined, aborted: undefined }, (settle) => {
      transcode.videoDescribed = () => settle(undefined);
      return () => (transcode.videoDescribed = undefined);
    });
  }

  private end(stream: Stream): Promise<void> {
    const transcode = this.bySource.get(stream);
    if (!transcode) return Promise.resolve();
    this.bySource.delete(stream);
    for (const { key } of transcode.renditions) this.byRendition.delete(streamId(stream.app, key));
    transcode.attempt.abort();
    return transcode.transcoder?.stop() ?? Promise.resolve();
  }

  private readonly killAll = (): void => {
    for (const { transcoder } of this.bySource.values()) transcoder?.kill();
  };
}
