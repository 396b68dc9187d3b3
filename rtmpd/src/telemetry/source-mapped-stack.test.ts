// The logger's stack mapping keeps the maps it read while stacks come and
// drops them a minute after the last (source-mapped-stack.ts): seen here by
// the map being read again, with fake timers for the minute.
import { SourceMap } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SourceMaps } from './source-mapped-stack.ts';

/** A built file of rtmpd's (tests run from its sources, so its built code is src/): no file needs to exist, the map is given. */
const built = new URL('../built.js', import.meta.url).href;
/** One segment: the built file's line 1, column 1 is line 1, column 1 of /src/origin.ts. */
const map = new SourceMap({
  version: 3,
  file: 'built.js',
  sources: ['/src/origin.ts'],
  sourcesContent: [],
  sourceRoot: '',
  names: [],
  mappings: 'AAAA',
});
const stack = `Error: broken\n    at f (${built}:1:5)\n    at node:internal/process/task_queues:105:5`;

afterEach(() => {
  vi.useRealTimers();
});

describe('the maps a logged stack is mapped through', () => {
  it('maps a built position to its source, and leaves other positions as they are', () => {
    const maps = new SourceMaps(() => map);
    expect(maps.mapStack(stack)).toBe('Error: broken\n    at f (/src/origin.ts:1:5)\n    at node:internal/process/task_queues:105:5');
  });

  it('reads a map once while stacks keep coming, drops it a minute after the last, and reads it again at the next', () => {
    vi.useFakeTimers();
    const read = vi.fn((url: string) => (url === `${built}.map` ? map : undefined));
    const maps = new SourceMaps(read);
    maps.mapStack(stack);
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(59_000);
      expect(maps.mapStack(stack)).toContain('/src/origin.ts:1:5');
    }
    expect(read).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(59_999);
    maps.mapStack(stack);
    expect(read).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(maps.mapStack(stack)).toContain('/src/origin.ts:1:5');
    expect(read).toHaveBeenCalledTimes(2);
  });

  it('remembers a file without a map as such until the drop, leaving its positions as they are', () => {
    vi.useFakeTimers();
    const read = vi.fn(() => undefined);
    const maps = new SourceMaps(read);
    expect(maps.mapStack(stack)).toBe(stack);
    expect(maps.mapStack(stack)).toBe(stack);
    expect(read).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    maps.mapStack(stack);
    expect(read).toHaveBeenCalledTimes(2);
  });
});
