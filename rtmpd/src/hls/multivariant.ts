// The multivariant playlist (RFC 8216 4.3.4.2) of a transcoded stream: the
// source and each live rendition, one EXT-X-STREAM-INF each, so a player
// (hls.js, Safari) picks and switches by bandwidth. Each variant is described
// from its own stream: BANDWIDTH (the peak segment bit rate) and
// AVERAGE-BANDWIDTH from the segments its HLS muxer made, RESOLUTION and
// FRAME-RATE from its SPS, CODECS from its decoder configuration records
// (omitted when a codec has no string here: a wrong CODECS is worse than
// none).
import { inspectAudio, inspectVideo } from '../flv/tag.ts';
import type { Stream } from '../hub/stream.ts';

/** Bits per second, as RFC 8216 4.3.4.2 has them (hls/bandwidth.ts). */
export interface Bandwidth {
  /** The peak segment bit rate (BANDWIDTH). */
  peak: number;
  /** The average segment bit rate (AVERAGE-BANDWIDTH). */
  average: number;
}

export interface Variant {
  stream: Stream;
  /** Relative to the multivariant playlist, credentials included. */
  uri: string;
  /** From its HLS segments (http/hls.ts waits for the first). */
  bandwidth: Bandwidth;
}

export function renderMultivariant(variants: readonly Variant[]): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const { stream, uri, bandwidth } of variants) {
    const attributes = [`BANDWIDTH=${bitsPerSecond(bandwidth.peak)}`, `AVERAGE-BANDWIDTH=${bitsPerSecond(bandwidth.average)}`];
    const codecs = codecsOf(stream);
    if (codecs) attributes.push(`CODECS="${codecs}"`);
    const { width, height, fps } = stream.videoTrack ?? {};
    if (width && height) attributes.push(`RESOLUTION=${width}x${height}`);
    if (fps) attributes.push(`FRAME-RATE=${fps.toFixed(3)}`);
    lines.push(`#EXT-X-STREAM-INF:${attributes.join(',')}`, uri);
  }
  return lines.join('\n') + '\n';
}

/** A decimal-integer of RFC 8216, at least 1. */
const bitsPerSecond = (value: number): number => Math.max(1, Math.round(value));

/** RFC 6381 codec strings of the stream's tracks, or undefined when one of them has none here. */
function codecsOf(stream: Stream): string | undefined {
  const codecs: string[] = [];
  if (stream.videoTrack) {
    const video = stream.videoHeader && videoCodec(stream.videoHeader.body);
    if (!video) return undefined;
    codecs.push(video);
  }
  if (stream.audioTrack) {
    const audio = audioCodec(stream);
    if (!audio) return undefined;
    codecs.push(audio);
  }
  return codecs.length > 0 ? codecs.join(',') : undefined;
}

/** avc1.PPCCLL: profile, constraint flags and level from the AVCDecoderConfigurationRecord. */
function videoCodec(header: Buffer): string | undefined {
  try {
    const { codec, data } = inspectVideo(header);
    if (codec !== 'h264' || data.length < 4) return undefined;
    return `avc1.${data.subarray(1, 4).toString('hex')}`;
  } catch {
    return undefined;
  }
}

/** mp4a.40.<audio object type> from the AudioSpecificConfig; MP3 and Opus by name. */
function audioCodec(stream: Stream): string | undefined {
  switch (stream.audioTrack?.codec) {
    case 'mp3':
      return 'mp4a.40.34';
    case 'opus':
      return 'Opus';
    case 'aac': {
      try {
        const data = stream.audioHeader ? inspectAudio(stream.audioHeader.body).data : undefined;
        if (!data || data.length < 2) return undefined;
        const type = data[0]! >> 3;
        return `mp4a.40.${type === 31 ? 32 + (((data[0]! & 7) << 3) | (data[1]! >> 5)) : type}`;
      } catch {
        return undefined;
      }
    }
    default:
      return undefined;
  }
}
