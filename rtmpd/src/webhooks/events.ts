// The events rtmpd sends to webhooks: one zod schema each (the payload is a
// contract; README, Webhooks, shows them), in the Standard Webhooks envelope
// {type, timestamp, data}.
import { z } from 'zod';
import { STREAM_END_REASONS } from '../hub/hub.ts';
import { streamViewSchema } from '../http/stream-view.ts';
import { recordingFormats } from '../config.ts';

const text = z.string().max(2048);
const time = z.iso.datetime();
const count = z.number().int().nonnegative();

/** The stream's identity, as the streams API names it. */
const streamFields = {
  stream_id: text,
  app: text,
  key: text,
  /** In a fleet, the pod that owns the stream (only that pod sends its events); null for a single server. */
  pod: text.nullable(),
};

const streamStartedSchema = z.object({
  ...streamFields,
  started_at: time,
  publisher: z.object({ protocol: text, remote_address: text }),
  /** What is known of the tracks when the event is sent (null: not seen yet). */
  video: streamViewSchema.shape.video,
  audio: streamViewSchema.shape.audio,
});

const streamEndedSchema = z.object({
  ...streamFields,
  started_at: time,
  ended_at: time,
  duration_seconds: z.number().nonnegative(),
  bytes_in: count,
  video_frames: count,
  audio_frames: count,
  reason: z.enum(STREAM_END_REASONS),
});

const recordingCompletedSchema = z.object({
  ...streamFields,
  /** The recordings API's id (in a fleet qualified by the pod: `<pod>/<app>/<key>/<file>`). */
  id: text,
  /** The file, relative to --storage-dir. */
  path: text,
  /** Where the recordings API serves it. */
  url: text,
  format: z.enum(recordingFormats),
  start_time: time,
  end_time: time,
  duration_seconds: z.number().nonnegative(),
  size_bytes: count,
});

const envelope = <T extends string, D extends z.ZodType>(type: T, data: D) => z.object({ type: z.literal(type), timestamp: time, data });

export const webhookEventSchema = z.discriminatedUnion('type', [
  envelope('stream.started', streamStartedSchema),
  envelope('stream.ended', streamEndedSchema),
  envelope('recording.completed', recordingCompletedSchema),
]);
export type WebhookEvent = z.infer<typeof webhookEventSchema>;
