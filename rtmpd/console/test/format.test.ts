// The console's number formatting, at the edges where its form changes; pure
// functions, so they run in Node (the page's own use is in console.test.ts).
import { describe, expect, it } from 'vitest';
import { bitrate, bytes, duration } from '../src/format.ts';

describe('console formatting', () => {
  it('writes a bitrate in kbps below 1000, with a decimal below 10 Mbps, without one from 10 Mbps', () => {
    expect([999, 1000, 9_949, 10_000].map(bitrate)).toEqual(['999 kbps', '1.0 Mbps', '9.9 Mbps', '10 Mbps']);
  });

  it('writes a duration as seconds, minutes:seconds, and hours:minutes:seconds from the first hour', () => {
    expect([59, 60, 3_599, 3_600, 7_325].map(duration)).toEqual(['59s', '1:00', '59:59', '1:00:00', '2:02:05']);
  });

  it('writes sizes in the binary unit they reach, from 1024 of the one below', () => {
    expect([1023, 1024, 1024 ** 2, 150 * 1024 ** 2].map(bytes)).toEqual(['1023 B', '1.0 KiB', '1.0 MiB', '150 MiB']);
  });
});
