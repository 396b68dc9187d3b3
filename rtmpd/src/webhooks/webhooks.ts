// Where events come from: the hub's publish and unpublish (stream.started,
// stream.ended) and the recorder's finished files (recording.completed). A
// relayed copy of a stream on another pod of a fleet is not a new stream:
// only the pod with its publisher sends its events. Each event is built once,
// checked against its schema and handed to delivery, which never blocks.
// A URL hears a stream's end only if it heard its start: one added while the
// stream is live gets neither (the streams API lists what is live now).
import { relative, sep } from 'node:path';
import type { Config } from '../config.ts';
import { recordingUrl, type RecordingStore } from '../http/recording-store.ts';
import { streamView } from '../http/stream-view.ts';
import type { StreamEndReason, StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { watchPath, type WatchedPath } from '../secrets/mounted.ts';
import { findRecording } from '../storage/catalog.ts';
import type { Logger } from '../telemetry/logger.ts';
import { newEventId, WebhookDelivery, type Clock, type Send } from './delivery.ts';
import { webhookEventSchema, type WebhookEvent } from './events.ts';
import { parseSigningKeys } from './signature.ts';

/** stream.started waits this long at most for the tracks the publisher declared. */
const TRACKS_WAIT_MS = 3000;

export interface WebhooksOptions {
  hub: StreamHub;
  /** Read at each event (the webhook options change with the config file). */
  config: Config;
  recordings: RecordingStore;
  logger: Logger;
  onDelivered?: (seconds: number) => void;
  clock?: Clock;
  send?: Send;
}

type Data<T extends WebhookEvent['type']> = Extract<WebhookEvent, { type: T }>['data'];

export class Webhooks {
  readonly delivery: WebhookDelivery;
  private readonly o: WebhooksOptions;
  private readonly secret: WatchedPath<Buffer[]> | undefined;
  /** Streams whose stream.started waits for their tracks. */
  private readonly starting = new Map<Stream, NodeJS.Timeout>();
  /** Per live stream, the URLs its start was announced to (or would have been, without stream.started chosen). */
  private readonly audiences = new Map<Stream, readonly string[]>();
  /** recording.completed events being described (the file is read for its duration). */
  private readonly describing = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private readonly onPublish = (stream: Stream): void => this.streamStarted(stream);
  private readonly onDescribed = (stream: Stream): void => {
    if (tracksKnown(stream)) this.sendStarted(stream);
  };
  private readonly onUnpublish = (stream: Stream, reason: StreamEndReason): void => this.streamEnded(stream, reason);

  private constructor(options: WebhooksOptions, secret: WatchedPath<Buffer[]> | undefined) {
    this.o = options;
    this.secret = secret;
    this.delivery = new WebhookDelivery({
      limits: options.config,
      keys: () => secret?.value ?? [],
      logger: options.logger,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.send ? { send: options.send } : {}),
      ...(options.onDelivered ? { onDelivered: options.onDelivered } : {}),
    });
    options.hub.on('publish', this.onPublish);
    options.hub.on('described', this.onDescribed);
    options.hub.on('unpublish', this.onUnpublish);
  }

  /** Reads --webhook-secret-file (an unreadable one is an error at start) and starts listening. */
  static async start(options: WebhooksOptions): Promise<Webhooks> {
    const { config, logger } = options;
    const secret = config.webhookSecretFile
      ? await watchPath({
          path: config.webhookSecretFile,
          option: '--webhook-secret-file',
          label: 'webhooks: signing keys',
          parse: parseSigningKeys,
          logger,
          intervalMs: 1000,
        })
      : undefined;
    if (config.webhookUrls.length > 0)
      logger.info(
        { urls: config.webhookUrls.length, events: config.webhookEvents, signed: secret !== undefined },
        secret ? 'webhooks: events are sent, signed' : 'webhooks: events are sent unsigned (no --webhook-secret-file)',
      );
    return new Webhooks(options, secret);
  }

  /** A recording file was closed whole and synced (recorder's onFileClosed). */
  recordingCompleted(path: string): void {
    if (!this.wanted('recording.completed')) return;
    const at = Date.now();
    const id = relative(this.o.config.storageDir, path).split(sep).join('/');
    const job = this.describeRecording(id)
      .then((data) => {
        if (!data) return;
        this.sendStartedNow(data.stream_id);
        this.emit('recording.completed', data, at);
      })
      .catch((err: unknown) => this.o.logger.error({ err, path }, 'webhooks: recording.completed not sent'))
      .finally(() => this.describing.delete(job));
    this.describing.add(job);
  }

  /**
   * Shutdown, after the streams ended and the recorder closed its files: the
   * events queued get what is left of `graceMs`.
   */
  close(graceMs: number): Promise<void> {
    return (this.closing ??= this.stop(graceMs));
  }

  private async stop(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.o.hub.off('publish', this.onPublish);
    this.o.hub.off('described', this.onDescribed);
    this.o.hub.off('unpublish', this.onUnpublish);
    for (const stream of [...this.starting.keys()]) this.sendStarted(stream);
    await Promise.all(this.describing);
    this.secret?.close();
    await this.delivery.close(Math.max(0, deadline - Date.now()));
  }

  private wanted(type: WebhookEvent['type']): boolean {
    return this.o.config.webhookUrls.length > 0 && this.o.config.webhookEvents.includes(type);
  }

  private get pod(): string | null {
    return this.o.config.fleetName ? this.o.config.fleetPodName : null;
  }

  private streamStarted(stream: Stream): void {
    if (stream.publisher.protocol === 'relay') return;
    this.audiences.set(stream, this.o.config.webhookUrls);
    if (!this.wanted('stream.started')) return;
    // Sent when the tracks are known (onDescribed), or with what is known after the wait.
    this.starting.set(
      stream,
      setTimeout(() => this.sendStarted(stream), TRACKS_WAIT_MS),
    );
  }

  /** Sends a stream's stream.started if it is still waiting for tracks. */
  private sendStarted(stream: Stream): void {
    const timer = this.starting.get(stream);
    if (!timer) return;
    clearTimeout(timer);
    this.starting.delete(stream);
    this.audiences.set(stream, this.o.config.webhookUrls);
    const view = streamView(stream, 0, true);
    this.emit(
      'stream.started',
      {
        ...this.streamFields(stream),
        publisher: { protocol: stream.publisher.protocol, remote_address: stream.publisher.remoteAddress },
        video: view.video,
        audio: view.audio,
      },
      stream.startTime.getTime(),
    );
  }

  /** What stream.started and stream.ended both say of the stream. */
  private streamFields(stream: Stream) {
    return { stream_id: stream.id, app: stream.app, key: stream.key, pod: this.pod, started_at: stream.startTime.toISOString() };
  }

  private sendStartedNow(streamId: string): void {
    for (const stream of this.starting.keys()) if (stream.id === streamId) this.sendStarted(stream);
  }

  private streamEnded(stream: Stream, reason: StreamEndReason): void {
    if (stream.publisher.protocol === 'relay') return;
    // Its start goes first, even when the stream ended before its tracks were known.
    this.sendStarted(stream);
    const audience = this.audiences.get(stream) ?? [];
    this.audiences.delete(stream);
    if (!this.wanted('stream.ended')) return;
    const at = Date.now();
    this.emit(
      'stream.ended',
      {
        ...this.streamFields(stream),
        ended_at: new Date(at).toISOString(),
        duration_seconds: Math.max(0, at - stream.startTime.getTime()) / 1000,
        bytes_in: stream.stats.bytesIn,
        video_frames: stream.stats.videoFrames,
        audio_frames: stream.stats.audioFrames,
        reason,
      },
      at,
      this.o.config.webhookUrls.filter((url) => audience.includes(url)),
    );
  }

  private async describeRecording(id: string): Promise<Data<'recording.completed'> | undefined> {
    // Deleted since it closed (through the API, by retention or by hand): there is nothing to announce.
    const file = await findRecording(this.o.config.storageDir, id);
    if (!file) return undefined;
    const view = await this.o.recordings.viewOf(file);
    const pod = this.pod;
    // In a fleet the recordings API names a file by the pod that holds it (fleet/recordings.ts).
    const apiId = pod ? `${pod}/${view.id}` : view.id;
    const { stream_id, app, key, format, start_time, end_time, duration_seconds, size_bytes } = view;
    return {
      stream_id,
      app,
      key,
      pod,
      id: apiId,
      path: id,
      url: recordingUrl(apiId),
      format,
      start_time,
      end_time,
      duration_seconds,
      size_bytes,
    };
  }

  /** Sends to `urls`: every URL configured now unless the event is for some of them only. */
  private emit<T extends WebhookEvent['type']>(type: T, data: Data<T>, at: number, urls = this.o.config.webhookUrls): void {
    if (!this.wanted(type)) return;
    // The schema is the contract: an event that does not fit it is a bug, logged rather than sent.
    const event = webhookEventSchema.safeParse({ type, timestamp: new Date(at).toISOString(), data });
    if (!event.success) {
      this.o.logger.error({ type, issues: event.error.issues }, 'webhooks: event does not fit its schema; not sent');
      return;
    }
    this.delivery.enqueue({ id: newEventId(), type, body: JSON.stringify(event.data), at }, urls);
  }
}

/** Whether the tracks the publisher declared in onMetaData (or, without it, both) have been seen. */
function tracksKnown(stream: Stream): boolean {
  if (!stream.metadata) return stream.videoTrack !== undefined && stream.audioTrack !== undefined;
  const declares = (field: string) => stream.metadataValues[field] !== undefined;
  return (!declares('videocodecid') || stream.videoTrack !== undefined) && (!declares('audiocodecid') || stream.audioTrack !== undefined);
}
