// A transcode's state and its view in the stream API (GET /api/v1/rtmp/streams).
import { z } from 'zod';

/** Where a stream's ffmpeg is: started and not yet publishing, publishing, waiting to restart, or done. */
export const TRANSCODE_STATES = ['starting', 'running', 'backoff', 'stopped'] as const;
export type TranscodeState = (typeof TRANSCODE_STATES)[number];

/** Why an ffmpeg ended while its source was live: the `reason` label of rtmpd_transcode_failures_total. */
export const TRANSCODE_FAILURES = ['spawn_failed', 'exited', 'killed'] as const;
export type TranscodeFailure = (typeof TRANSCODE_FAILURES)[number];

/** Why a stream a rule matched is not transcoded: the `reason` label of rtmpd_transcode_refused_total. */
export const TRANSCODE_REFUSALS = ['max_processes', 'picture_too_large'] as const;
export type TranscodeRefusal = (typeof TRANSCODE_REFUSALS)[number];

export const transcodeViewSchema = z.object({
  state: z
    .enum(TRANSCODE_STATES)
    .describe(
      "starting (waiting for the source's video sequence header, or ffmpeg runs and no rendition is published yet), running, backoff (ffmpeg ended; restarting), stopped.",
    ),
  renditions: z
    .array(
      z.object({ name: z.string().max(32), stream_id: z.string().max(1024), height: z.number().int(), bitrate_kbps: z.number().int() }),
    )
    .max(8)
    .describe('The renditions ffmpeg publishes: stream_id is their own stream, bitrate_kbps video plus audio.'),
  starts: z.number().int().nonnegative().describe('ffmpeg processes started for this stream (restarts are the rest after the first).'),
  last_error: z
    .string()
    .max(4096)
    .nullable()
    .describe('Why the last ffmpeg ended: its exit and the end of its stderr; null when none did.'),
});
export type TranscodeView = z.infer<typeof transcodeViewSchema>;
