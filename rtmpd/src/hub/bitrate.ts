import type { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';

interface Sample {
  at: number;
  bytesIn: number;
}

export interface BitrateMeterOptions {
  /** How far back the rate looks. */
  windowMs: number;
  sampleEveryMs: number;
}

/**
 * Ingest bitrate over a recent window (not since the start, so a stream that
 * changed its bitrate shows the new one). Samples each stream's byte counter
 * on a timer; the hot path is never touched.
 */
export class BitrateMeter {
  private readonly samples = new Map<Stream, Sample[]>();
  private readonly hub: StreamHub;
  private readonly options: BitrateMeterOptions;
  private readonly timer: NodeJS.Timeout;
  private readonly onUnpublish = (stream: Stream): void => void this.samples.delete(stream);

  constructor(hub: StreamHub, options: BitrateMeterOptions = { windowMs: 5000, sampleEveryMs: 1000 }) {
    this.hub = hub;
    this.options = options;
    this.timer = setInterval(() => this.sample(performance.now()), options.sampleEveryMs).unref();
    hub.on('unpublish', this.onUnpublish);
  }

  /** Kilobits per second received over the window; since the publish for a younger stream. */
  kbps(stream: Stream, now = performance.now()): number {
    const oldest = this.samples.get(stream)?.[0] ?? { at: now - (Date.now() - stream.startTime.getTime()), bytesIn: 0 };
    const elapsedMs = now - oldest.at;
    if (elapsedMs <= 0) return 0;
    return Math.round(((stream.stats.bytesIn - oldest.bytesIn) * 8) / elapsedMs);
  }

  sample(now: number): void {
    const keep = Math.ceil(this.options.windowMs / this.options.sampleEveryMs) + 1;
    for (const stream of this.hub.list()) {
      let samples = this.samples.get(stream);
      if (!samples) this.samples.set(stream, (samples = []));
      samples.push({ at: now, bytesIn: stream.stats.bytesIn });
      if (samples.length > keep) samples.shift();
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.hub.off('unpublish', this.onUnpublish);
  }
}
