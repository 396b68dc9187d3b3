// The live media playlist (RFC 8216, and its Low-Latency extensions from
// RFC 8216bis): rendered from the muxer's segments on every change, so all
// players of a stream share one string.

interface PlaylistPart {
  duration: number;
  independent: boolean;
}

export interface PlaylistSegment {
  msn: number;
  duration: number;
  /** Unix milliseconds of its first sample. */
  wallClock: number;
  parts: readonly PlaylistPart[];
  /** Starts after a change of tracks or timeline (EXT-X-DISCONTINUITY, and a new EXT-X-MAP). */
  discontinuity: boolean;
  initId: number;
}

export interface PlaylistNames {
  init(initId: number): string;
  segment(msn: number): string;
  part(msn: number, index: number): string;
}

export interface PlaylistState {
  lowLatency: boolean;
  /** fMP4: segments name their init section (EXT-X-MAP); MPEG-TS segments carry their own tables. */
  initSections: boolean;
  targetDuration: number;
  partTarget: number;
  /** Complete segments, oldest first. */
  segments: readonly PlaylistSegment[];
  /** The segment being written: only its parts are listed (Low-Latency HLS). */
  current: PlaylistSegment | undefined;
  /** The msn the next segment will get once `current` is done (or the next one started). */
  nextMsn: number;
  /** Discontinuities of segments that left the window. */
  discontinuitySequence: number;
  ended: boolean;
}

const seconds = (value: number): string => value.toFixed(3);
const dateTime = (unixMs: number): string => new Date(unixMs).toISOString();

export function renderPlaylist(state: PlaylistState, names: PlaylistNames): string {
  const { lowLatency, segments, current } = state;
  // Version 9 for LL-HLS's tags, 6 and up for EXT-X-MAP without I-frames, 3 for EXTINF's decimals.
  const version = lowLatency ? 9 : state.initSections ? 7 : 3;
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${version}`, `#EXT-X-TARGETDURATION:${state.targetDuration}`];
  if (lowLatency) {
    // PART-HOLD-BACK must be at least twice the part target; three times is the recommendation.
    lines.push(`#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${seconds(state.partTarget * 3)}`);
    lines.push(`#EXT-X-PART-INF:PART-TARGET=${seconds(state.partTarget)}`);
  }
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${segments[0]?.msn ?? current?.msn ?? state.nextMsn}`);
  if (state.discontinuitySequence > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${state.discontinuitySequence}`);
  lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  // Parts are listed for the segments within three target durations of the end, as RFC 8216bis advises.
  let partsFrom = segments.length;
  for (let tail = 0; partsFrom > 0 && tail < state.targetDuration * 3;) tail += segments[--partsFrom]!.duration;
  let initId: number | undefined;
  const open = (segment: PlaylistSegment): void => {
    if (initId !== undefined && segment.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (state.initSections && segment.initId !== initId) lines.push(`#EXT-X-MAP:URI="${names.init(segment.initId)}"`);
    initId = segment.initId;
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${dateTime(segment.wallClock)}`);
  };
  const parts = (segment: PlaylistSegment): void => {
    segment.parts.forEach((part, i) =>
      lines.push(
        `#EXT-X-PART:DURATION=${seconds(part.duration)},URI="${names.part(segment.msn, i)}"${part.independent ? ',INDEPENDENT=YES' : ''}`,
      ),
    );
  };
  segments.forEach((segment, i) => {
    open(segment);
    if (lowLatency && i >= partsFrom) parts(segment);
    lines.push(`#EXTINF:${seconds(segment.duration)},`, names.segment(segment.msn));
  });
  if (lowLatency && !state.ended) {
    if (current && current.parts.length > 0) {
      open(current);
      parts(current);
    }
    const msn = current?.msn ?? state.nextMsn;
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${names.part(msn, current?.parts.length ?? 0)}"`);
  }
  if (state.ended) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}
