// The bit rates a multivariant playlist gives a variant (RFC 8216 4.3.4.2),
// from the segments its muxer completed. BANDWIDTH is the peak segment bit
// rate: the largest bit rate of any contiguous set of segments whose total
// duration is at least the target duration, so one short segment (a keyframe
// forced early, the last one before an unpublish) does not count as a peak on
// its own. AVERAGE-BANDWIDTH is the bit rate of all of them.
import type { Bandwidth } from './multivariant.ts';

interface Completed {
  bits: number;
  seconds: number;
}

/**
 * Only sets shorter than four target durations need looking at: a segment lasts less than 1.5 target
 * durations (the target is at least its duration rounded), so a set of 3.5 or more splits into two
 * contiguous sets of at least one target duration each, one of them at least as dense as the whole.
 * The sets that end with a new segment need only the segments of the last four target durations.
 * The target only grows; a peak found under a shorter one stays.
 */
const SPAN_TARGETS = 4;

export class SegmentRates {
  private peak = 0;
  private bits = 0;
  private seconds = 0;
  /** The latest segments, newest last, back to SPAN_TARGETS target durations before the newest. */
  private readonly recent: Completed[] = [];

  /** Counts a completed segment; `targetSeconds` is the playlist's target duration now. */
  add(bits: number, seconds: number, targetSeconds: number): void {
    if (seconds <= 0) return;
    this.bits += bits;
    this.seconds += seconds;
    this.recent.push({ bits, seconds });
    // Every set ending with this segment that lasts at least the target, shortest first.
    let setBits = 0;
    let setSeconds = 0;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      setBits += this.recent[i]!.bits;
      setSeconds += this.recent[i]!.seconds;
      if (setSeconds >= targetSeconds) this.peak = Math.max(this.peak, setBits / setSeconds);
      if (setSeconds >= SPAN_TARGETS * targetSeconds) {
        this.recent.splice(0, i);
        break;
      }
    }
  }

  /**
   * Undefined before the first segment. While all segments together last less than the target, no
   * set qualifies: their average bit rate is the peak known.
   */
  get bandwidth(): Bandwidth | undefined {
    if (this.seconds === 0) return undefined;
    const average = this.bits / this.seconds;
    return { peak: this.peak > 0 ? this.peak : average, average };
  }
}
