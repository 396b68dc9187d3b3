// A VOD media playlist over recorded fMP4 files: each file's init segment and
// fragments are addressed by byte range (EXT-X-MAP / EXT-X-BYTERANGE), and a
// segment runs from one keyframe fragment to the next, so a player seeks
// anywhere in what was recorded without any file being rewritten.
import type { FragmentEntry } from '../storage/recording-index.ts';

export interface VodFile {
  /** URI of the file, relative to the playlist. */
  uri: string;
  /** Unix milliseconds of the file's first fragment. */
  wallClock: number;
  initSize: number;
  fragments: readonly FragmentEntry[];
}

interface VodSegment {
  offset: number;
  size: number;
  start: number;
  duration: number;
}

/** Groups fragments into segments that start on a keyframe fragment. */
function segmentsOf(fragments: readonly FragmentEntry[]): VodSegment[] {
  const segments: VodSegment[] = [];
  for (const f of fragments) {
    const last = segments.at(-1);
    if (last && !f.independent && last.offset + last.size === f.offset) {
      last.size += f.size;
      last.duration += f.duration;
    } else segments.push({ offset: f.offset, size: f.size, start: f.start, duration: f.duration });
  }
  return segments;
}

/** `range`: only segments overlapping [from, to] (Unix ms) are listed. */
export function renderVodPlaylist(files: readonly VodFile[], range: { from?: number | undefined; to?: number | undefined } = {}): string {
  const body: string[] = [];
  let maxDuration = 1;
  let previousEnd: number | undefined;
  for (const file of files) {
    const first = file.fragments[0];
    if (!first) continue;
    let mapped = false;
    for (const segment of segmentsOf(file.fragments)) {
      const wallClock = file.wallClock + (segment.start - first.start) * 1000;
      if (range.from !== undefined && wallClock + segment.duration * 1000 < range.from) continue;
      if (range.to !== undefined && wallClock > range.to) continue;
      if (!mapped) {
        // A new file continues the timeline only if it starts where the last one ended.
        if (previousEnd !== undefined && Math.abs(segment.start - previousEnd) > 0.1) body.push('#EXT-X-DISCONTINUITY');
        body.push(`#EXT-X-MAP:URI="${file.uri}",BYTERANGE="${file.initSize}@0"`);
        mapped = true;
      } else if (previousEnd !== undefined && Math.abs(segment.start - previousEnd) > 0.1) body.push('#EXT-X-DISCONTINUITY');
      body.push(
        `#EXT-X-PROGRAM-DATE-TIME:${new Date(wallClock).toISOString()}`,
        `#EXTINF:${segment.duration.toFixed(3)},`,
        `#EXT-X-BYTERANGE:${segment.size}@${segment.offset}`,
        file.uri,
      );
      maxDuration = Math.max(maxDuration, Math.round(segment.duration));
      previousEnd = segment.start + segment.duration;
    }
  }
  const head = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${maxDuration}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-MEDIA-SEQUENCE:0',
  ];
  return [...head, ...body, '#EXT-X-ENDLIST'].join('\n') + '\n';
}
