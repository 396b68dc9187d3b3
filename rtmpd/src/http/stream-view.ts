import { forwardViewSchema, type ForwardView } from '../forward/forward-view.ts';
import type { HlsServer } from '../hls/server.ts';
import type { Stream } from '../hub/stream.ts';
import { z } from 'zod';
import { transcodeViewSchema, type TranscodeView } from '../transcode/transcode-view.ts';
import type { Recorder } from '../storage/recorder.ts';

/**
 * A stream as the API shows it. The first four fields are the original
 * flux-rtmpd's, byte for byte; the rest were added here. Unknown values are
 * null rather than missing, so clients see a stable shape. Fields say what
 * they are in .describe(), which the OpenAPI document (http/openapi.ts) carries.
 */
const text = z.string().max(1024);
const count = z.number().int().nonnegative();
const nullableNumber = z.number().nonnegative().nullable();

export const streamViewSchema = z.object({
  stream_id: text,
  app: text,
  key: text,
  start_time: z.iso.datetime().describe("RFC 3339, UTC, whole seconds: the original's format."),
  video: z
    .object({
      codec: text,
      profile: text.nullable(),
      level: text.nullable(),
      width: nullableNumber,
      height: nullableNumber,
      fps: nullableNumber,
    })
    .nullable(),
  audio: z.object({ codec: text, profile: text.nullable(), sample_rate: nullableNumber, channels: nullableNumber }).nullable(),
  bitrate_kbps: z.number().nonnegative(),
  bytes_in: count,
  video_frames: count.describe(
    'Video frames received since the publish (sequence headers excluded); its rate over time is the fps actually arriving.',
  ),
  keyframes: count.describe('Keyframes received since the publish; a snapshot can be asked for once there is one.'),
  dropped_frames: count.describe('Frames not sent to slow players and forwards (each skipped to the next keyframe), summed over them.'),
  players: z
    .object({ rtmp: count, http_flv: count, hls: count, total: count })
    .describe(
      '`rtmp` counts RTMP players over both listeners (RTMPS too); HLS players are estimated: distinct clients that polled the playlist in the last 10 s.',
    ),
  hls_url: text.nullable().describe("Path of the stream's HLS playlist on this server; null when HLS is off for it."),
  recording: z.boolean().describe('Whether the stream is being written to disk now.'),
  recording_state: z
    .enum(['recording', 'disk_full', 'failed', 'unsupported_codec', 'off'])
    .describe(
      '`recording`, `disk_full` or `failed` (stopped on a disk error, retrying), `unsupported_codec` (recorded, but the format carries none of its tracks: nothing is written; see `recording_left_out`), or `off` when it is not recorded.',
    ),
  recording_left_out: z
    .array(text)
    .max(2)
    .default([])
    .describe(
      "Codecs of the stream's tracks its recording leaves out of the files (fMP4 does not carry PCM, G.711, Sorenson H.263, VP6, ...; record the stream as FLV to keep them); empty when none, or when it is not recorded.",
    ),
  publisher: z
    .object({ protocol: text, remote_address: text.nullable() })
    .describe(
      "protocol: `rtmp`, `rtmps` (RTMP over TLS), `transcode` for a rendition a transcode here makes, or `relay` for a copy pulled from the pod of the fleet that owns the stream (only in the pods' lists to each other); remote_address is null unless the caller presented an API token.",
    ),
  owner: z
    .object({ pod: text })
    .nullable()
    .describe("In a fleet, the pod that owns the stream (its publisher's); null for a single server."),
  forwards: z
    .array(forwardViewSchema)
    .max(1000)
    .default([])
    .describe('Where the stream is forwarded to (forwardRules); empty when nowhere. A pod of an older version sends none.'),
  transcode: transcodeViewSchema
    .nullable()
    .default(null)
    .describe("The stream's transcode (transcodeRules): its ffmpeg's state and the renditions it publishes; null when not transcoded."),
  transcoded_from: text
    .nullable()
    .default(null)
    .describe('For a rendition: the stream_id of the source it is transcoded from; null for any other stream.'),
});

export type StreamView = z.infer<typeof streamViewSchema>;

export interface StreamViewSources {
  hls?: HlsServer | undefined;
  recorder?: Recorder | undefined;
  forwards?: { viewsOf(stream: Stream): ForwardView[] } | undefined;
  transcodes?: { viewOf(stream: Stream): TranscodeView | undefined; sourceOf(stream: Stream): Stream | undefined } | undefined;
}

export function streamView(
  stream: Stream,
  bitrateKbps: number,
  showAddress: boolean,
  { hls, recorder, forwards, transcodes }: StreamViewSources = {},
): StreamView {
  const recordingState = recorder?.stateOf(stream) ?? 'off';
  const hlsPlayers = hls?.players(stream) ?? 0;
  const video = stream.videoTrack;
  const audio = stream.audioTrack;
  const subscribers = stream.subscriberCounts();
  return {
    stream_id: stream.id,
    app: stream.app,
    key: stream.key,
    start_time: stream.startTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    video: video
      ? {
          codec: video.codec,
          profile: video.profile ?? null,
          level: video.level ?? null,
          width: video.width ?? declared(stream, 'width'),
          height: video.height ?? declared(stream, 'height'),
          fps: roundFps(video.fps ?? declared(stream, 'framerate')),
        }
      : null,
    audio: audio
      ? { codec: audio.codec, profile: audio.profile ?? null, sample_rate: audio.sampleRate ?? null, channels: audio.channels ?? null }
      : null,
    bitrate_kbps: bitrateKbps,
    bytes_in: stream.stats.bytesIn,
    video_frames: stream.stats.videoFrames,
    keyframes: stream.stats.keyframes,
    dropped_frames: stream.stats.framesDropped,
    players: {
      rtmp: subscribers.rtmp + subscribers.rtmps,
      http_flv: subscribers['http-flv'],
      hls: hlsPlayers,
      total: stream.playerCount + hlsPlayers,
    },
    hls_url: hls?.settings(stream.app, stream.key).enabled ? `/${stream.app}/${stream.key}/index.m3u8` : null,
    recording: recordingState === 'recording',
    recording_state: recordingState,
    recording_left_out: recorder?.leftOutOf(stream) ?? [],
    publisher: { protocol: stream.publisher.protocol, remote_address: showAddress ? stream.publisher.remoteAddress : null },
    owner: null,
    forwards: forwards?.viewsOf(stream) ?? [],
    transcode: transcodes?.viewOf(stream) ?? null,
    transcoded_from: transcodes?.sourceOf(stream)?.id ?? null,
  };
}

/** A number the encoder declared in onMetaData; the bitstream wins when it says. */
function declared(stream: Stream, name: string): number | null {
  const value = stream.metadataValues[name];
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null;
}

const roundFps = (fps: number | null): number | null => (fps === null ? null : Math.round(fps * 100) / 100);
