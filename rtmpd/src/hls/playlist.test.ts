import { describe, expect, it } from 'vitest';
import { renderPlaylist, type PlaylistSegment, type PlaylistState } from './playlist.ts';

const names = {
  init: (initId: number) => `init-${initId}.mp4`,
  segment: (msn: number) => `seg-${msn}.m4s`,
  part: (msn: number, index: number) => `part-${msn}-${index}.m4s`,
};

const segment = (msn: number, o: Partial<PlaylistSegment> = {}): PlaylistSegment => ({
  msn,
  duration: 1,
  wallClock: Date.UTC(2026, 10, 30) + msn * 1000,
  parts: [
    { duration: 0.5, independent: true },
    { duration: 0.5, independent: false },
  ],
  discontinuity: false,
  initId: 0,
  ...o,
});

const state = (o: Partial<PlaylistState>): PlaylistState => ({
  lowLatency: false,
  initSections: true,
  targetDuration: 1,
  partTarget: 0.5,
  segments: [],
  current: undefined,
  nextMsn: 0,
  discontinuitySequence: 0,
  ended: false,
  ...o,
});

const tagsOf = (text: string, tag: string) => text.split('\n').filter((line) => line.startsWith(tag));

describe('renderPlaylist', () => {
  it('marks a discontinuity between segments, never before the first one listed, and maps each new init segment', () => {
    // The segment before the discontinuity has left the playlist: DISCONTINUITY-SEQUENCE counts it.
    const text = renderPlaylist(
      state({
        segments: [
          segment(4, { discontinuity: true, initId: 1 }),
          segment(5, { initId: 1 }),
          segment(6, { discontinuity: true, initId: 2 }),
        ],
        discontinuitySequence: 1,
      }),
      names,
    );
    const lines = text.split('\n');
    expect(tagsOf(text, '#EXT-X-DISCONTINUITY')).toEqual(['#EXT-X-DISCONTINUITY-SEQUENCE:1', '#EXT-X-DISCONTINUITY']);
    expect(lines.indexOf('#EXT-X-DISCONTINUITY')).toBe(lines.indexOf('seg-5.m4s') + 1);
    expect(tagsOf(text, '#EXT-X-MAP')).toEqual(['#EXT-X-MAP:URI="init-1.mp4"', '#EXT-X-MAP:URI="init-2.mp4"']);
    expect(tagsOf(text, '#EXT-X-MEDIA-SEQUENCE')).toEqual(['#EXT-X-MEDIA-SEQUENCE:4']);
  });

  it('lists the parts of the segments in the last three target durations only, then the current parts and the preload hint', () => {
    const segments = Array.from({ length: 8 }, (_, msn) => segment(msn));
    const current = segment(8, { parts: [{ duration: 0.5, independent: true }] });
    const text = renderPlaylist(state({ lowLatency: true, segments, current, nextMsn: 9 }), names);
    const partsOf = (msn: number) => tagsOf(text, '#EXT-X-PART:').filter((line) => line.includes(`"part-${msn}-`)).length;
    expect(segments.map((s) => partsOf(s.msn))).toEqual([0, 0, 0, 0, 0, 2, 2, 2]);
    expect(partsOf(8)).toBe(1);
    expect(tagsOf(text, '#EXT-X-PRELOAD-HINT')).toEqual(['#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-8-1.m4s"']);
    expect(text).not.toContain('#EXT-X-ENDLIST');
  });

  it('lists MPEG-TS segments without EXT-X-MAP, at version 3, with their discontinuities', () => {
    const ts = { ...names, segment: (msn: number) => `seg-${msn}.ts` };
    const segments = [segment(0), segment(1, { discontinuity: true })];
    const text = renderPlaylist(state({ initSections: false, segments, ended: true }), ts);
    expect(tagsOf(text, '#EXT-X-VERSION')).toEqual(['#EXT-X-VERSION:3']);
    expect(tagsOf(text, '#EXT-X-MAP')).toEqual([]);
    expect(tagsOf(text, '#EXT-X-DISCONTINUITY')).toEqual(['#EXT-X-DISCONTINUITY']);
    expect(text.split('\n').filter((line) => !line.startsWith('#') && line)).toEqual(['seg-0.ts', 'seg-1.ts']);
  });
});
