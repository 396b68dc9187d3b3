// Each stream's bitrate and frame rate over the last minutes, sampled from
// every poll of the stream list since the console was opened.
import type { Stream } from './api.ts';

export const HISTORY_MS = 5 * 60_000;

export interface Sample {
  /** performance.now() of the poll. */
  at: number;
  kbps: number;
  /** Frames per second that arrived since the previous sample; null for the first. */
  fps: number | null;
  videoFrames: number;
}

export class History {
  private readonly byStream = new Map<string, Sample[]>();

  record(streams: Stream[], at = performance.now()): void {
    const live = new Set<string>();
    for (const stream of streams) {
      live.add(stream.stream_id);
      let samples = this.byStream.get(stream.stream_id);
      if (!samples) this.byStream.set(stream.stream_id, (samples = []));
      const previous = samples.at(-1);
      const seconds = previous ? (at - previous.at) / 1000 : 0;
      const fps = previous && seconds > 0 ? Math.max(0, stream.video_frames - previous.videoFrames) / seconds : null;
      samples.push({ at, kbps: stream.bitrate_kbps, fps, videoFrames: stream.video_frames });
      while (samples.length > 0 && samples[0]!.at < at - HISTORY_MS) samples.shift();
    }
    for (const id of this.byStream.keys()) if (!live.has(id)) this.byStream.delete(id);
  }

  of(streamId: string): readonly Sample[] {
    return this.byStream.get(streamId) ?? [];
  }
}
