// A media playlist read back for tests, and the RFC 8216 / 8216bis rules a
// live (LL-)HLS playlist must keep (Apple's mediastreamvalidator does not run
// here, so tests check these instead).
import { expect } from 'vitest';

interface ParsedPart {
  duration: number;
  uri: string;
  independent: boolean;
}

interface ParsedSegment {
  msn: number;
  duration: number;
  uri: string;
  programDateTime: string | undefined;
  parts: ParsedPart[];
}

export interface ParsedPlaylist {
  text: string;
  version: number;
  targetDuration: number;
  mediaSequence: number;
  partTarget: number | undefined;
  partHoldBack: number | undefined;
  canBlockReload: boolean;
  map: string | undefined;
  segments: ParsedSegment[];
  /** Parts listed after the last complete segment. */
  pendingParts: ParsedPart[];
  preloadHint: string | undefined;
  ended: boolean;
}

const attr = (line: string, name: string): string | undefined =>
  new RegExp(`${name}=("([^"]*)"|[^,]*)`).exec(line)?.[2] ?? new RegExp(`${name}=([^,]*)`).exec(line)?.[1];

export function parsePlaylist(text: string): ParsedPlaylist {
  const lines = text.trim().split('\n');
  expect(lines[0]).toBe('#EXTM3U');
  const playlist: ParsedPlaylist = {
    text,
    version: 0,
    targetDuration: NaN,
    mediaSequence: 0,
    partTarget: undefined,
    partHoldBack: undefined,
    canBlockReload: false,
    map: undefined,
    segments: [],
    pendingParts: [],
    preloadHint: undefined,
    ended: false,
  };
  let parts: ParsedPart[] = [];
  let pdt: string | undefined;
  let duration: number | undefined;
  for (const line of lines.slice(1)) {
    if (line.startsWith('#EXT-X-VERSION:')) playlist.version = Number(line.slice(15));
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) playlist.targetDuration = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) playlist.mediaSequence = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-PART-INF:')) playlist.partTarget = Number(attr(line, 'PART-TARGET'));
    else if (line.startsWith('#EXT-X-SERVER-CONTROL:')) {
      playlist.canBlockReload = attr(line, 'CAN-BLOCK-RELOAD') === 'YES';
      playlist.partHoldBack = Number(attr(line, 'PART-HOLD-BACK'));
    } else if (line.startsWith('#EXT-X-MAP:')) playlist.map ??= attr(line, 'URI');
    else if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = line.slice(25);
    else if (line.startsWith('#EXT-X-PART:'))
      parts.push({ duration: Number(attr(line, 'DURATION')), uri: attr(line, 'URI')!, independent: attr(line, 'INDEPENDENT') === 'YES' });
    else if (line.startsWith('#EXT-X-PRELOAD-HINT:')) playlist.preloadHint = attr(line, 'URI');
    else if (line.startsWith('#EXTINF:')) duration = Number(line.slice(8).split(',')[0]);
    else if (line === '#EXT-X-ENDLIST') playlist.ended = true;
    else if (!line.startsWith('#') && line.length > 0) {
      playlist.segments.push({
        msn: playlist.mediaSequence + playlist.segments.length,
        duration: duration!,
        uri: line,
        programDateTime: pdt,
        parts,
      });
      parts = [];
      pdt = undefined;
      duration = undefined;
    }
  }
  playlist.pendingParts = parts;
  return playlist;
}

/** RFC 8216 4.3.3.1 and 6.2.1, and for LL-HLS RFC 8216bis 4.4.3.7-8 and 4.4.4.9. */
export function expectValidLivePlaylist(playlist: ParsedPlaylist): void {
  // MPEG-TS segments carry their own tables (no EXT-X-MAP, which needs version 6 or more); EXTINF's decimals need 3.
  const ts = playlist.segments.every((segment) => segment.uri.endsWith('.ts'));
  expect(playlist.version).toBeGreaterThanOrEqual(ts ? 3 : 7);
  expect(Number.isInteger(playlist.targetDuration)).toBe(true);
  if (ts) expect(playlist.map).toBeUndefined();
  else expect(playlist.map).toBeTruthy();
  expect(playlist.segments.length).toBeGreaterThan(0);
  for (const segment of playlist.segments) {
    // EXTINF rounded to the nearest integer must not exceed the target duration.
    expect(Math.round(segment.duration), playlist.text).toBeLessThanOrEqual(playlist.targetDuration);
    expect(segment.duration).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(segment.programDateTime ?? ''))).toBe(false);
  }
  if (playlist.partTarget === undefined) return;
  expect(playlist.canBlockReload).toBe(true);
  expect(playlist.partHoldBack!).toBeGreaterThanOrEqual(2 * playlist.partTarget);
  expect(playlist.preloadHint ?? playlist.ended).toBeTruthy();
  const withParts = playlist.segments.filter((s) => s.parts.length > 0);
  for (const segment of withParts) {
    // A segment's parts add up to it, each within the part target.
    const sum = segment.parts.reduce((total, part) => total + part.duration, 0);
    expect(Math.abs(sum - segment.duration)).toBeLessThan(0.01 * segment.parts.length);
    expect(segment.parts[0]!.independent).toBe(true);
  }
  for (const part of [...withParts.flatMap((s) => s.parts), ...playlist.pendingParts]) {
    expect(part.duration, playlist.text).toBeLessThanOrEqual(playlist.partTarget);
    expect(part.duration).toBeGreaterThan(0);
  }
}

/** Media sequence continuity between two reloads: a URI keeps its sequence number and nothing is reordered. */
export function expectContinuity(before: ParsedPlaylist, after: ParsedPlaylist): void {
  expect(after.mediaSequence).toBeGreaterThanOrEqual(before.mediaSequence);
  const msnByUri = new Map(before.segments.map((s) => [s.uri, s.msn]));
  for (const segment of after.segments) {
    const earlier = msnByUri.get(segment.uri);
    if (earlier !== undefined) expect(segment.msn).toBe(earlier);
  }
  for (let i = 1; i < after.segments.length; i++) expect(after.segments[i]!.uri).not.toBe(after.segments[i - 1]!.uri);
}

/**
 * RFC 8216 4.3.4.2's peak segment bit rate: the largest bit rate of any contiguous set of segments
 * whose total duration is at least the target duration. rtmpd's target only grows (a segment longer
 * than it raises it); a set counts under the target the playlist had when its last segment was
 * listed, so a peak measured before the target grew stays (an upper bound, never an understatement).
 */
export function peakSegmentBitRate(segments: readonly { bits: number; seconds: number; targetSeconds: number }[]): number {
  let peak = 0;
  for (let last = 0; last < segments.length; last++) {
    let bits = 0;
    let seconds = 0;
    for (let first = last; first >= 0; first--) {
      bits += segments[first]!.bits;
      seconds += segments[first]!.seconds;
      if (seconds >= segments[last]!.targetSeconds) peak = Math.max(peak, bits / seconds);
    }
  }
  return peak;
}
