import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordingFile } from './catalog.ts';
import { indexerFor } from './recording-index.ts';

const dir = await mkdtemp(join(tmpdir(), 'rtmpd-index-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const box = (type: string, ...payload: Buffer[]): Buffer => {
  const size = Buffer.alloc(4);
  size.writeUInt32BE(8 + payload.reduce((sum, p) => sum + p.length, 0));
  return Buffer.concat([size, Buffer.from(type, 'latin1'), ...payload]);
};
const words = (...values: number[]): Buffer =>
  Buffer.concat(values.map((v) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255])));

/** An fMP4 file of one video track (timescale 1000) and `fragments` fragments of one 1 s sample each, their media left out. */
async function recording(name: string, fragments: number): Promise<RecordingFile> {
  const trak = box(
    'trak',
    box('tkhd', words(0, 0, 0, 1)),
    box('mdia', box('mdhd', words(0, 0, 0, 1000)), box('hdlr', words(0, 0), Buffer.from('vide'))),
  );
  const init = Buffer.concat([box('ftyp', Buffer.from('isom')), box('moov', trak)]);
  const fragment = (i: number) =>
    Buffer.concat([
      box('moof', box('traf', box('tfhd', words(0, 1)), box('tfdt', words(0, i * 1000)), box('trun', words(0x100, 1, 1000)))),
      box('mdat'),
    ]);
  return fmp4File(name, Buffer.concat([init, ...Array.from({ length: fragments }, (_, i) => fragment(i))]));
}

/** Writes `bytes` as the fMP4 recording `name`. */
async function fmp4File(name: string, bytes: Buffer): Promise<RecordingFile> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const { size, mtime } = await stat(path);
  const start = new Date(0);
  return { id: `live/k/${name}`, app: 'live', key: 'k', name, path, format: 'fmp4', start, size, modified: mtime };
}

describe('recording indexes', () => {
  const indexRecording = indexerFor();

  it('are cached up to 100,000 fragments in all: the least recently indexed go first, a larger one is not kept', async () => {
    const small = await recording('small.mp4', 3);
    const large = await recording('large.mp4', 100_000);
    expect((await indexRecording(small)).duration).toBe(3);
    await rm(small.path);
    // Cached: the file is not read again.
    expect((await indexRecording(small)).duration).toBe(3);
    expect((await indexRecording(large)).fragments).toHaveLength(100_000);
    await rm(large.path);
    // The large one, cached, pushed the small one out.
    expect((await indexRecording(large)).fragments).toHaveLength(100_000);
    await expect(indexRecording(small)).rejects.toThrow(/ENOENT/);

    const larger = await recording('larger.mp4', 100_001);
    expect((await indexRecording(larger)).fragments).toHaveLength(100_001);
    await rm(larger.path);
    await expect(indexRecording(larger)).rejects.toThrow(/ENOENT/);
  });

  it('take turns between requests, a file at a time: a request of one file is not held behind a page of 40', async () => {
    const page = await Promise.all(Array.from({ length: 40 }, (_, i) => recording(`page-${i}.mp4`, 10)));
    const alone = await recording('alone.mp4', 10);
    const done: string[] = [];
    const indexed = (index: ReturnType<typeof indexerFor>) => (file: RecordingFile) => index(file).then(() => done.push(file.name));
    const pageIndexed = Promise.all(page.map(indexed(indexerFor())));
    await indexed(indexerFor())(alone);
    // Two of the page's files were being read, and the page's queue had its turn once before the single file's
    // (in one queue for all, it came after the page's 40).
    expect(done.indexOf('alone.mp4')).toBeLessThan(5);
    await pageIndexed;
  });

  it('of a request whose client left are not read, and its places go on to the others', async () => {
    const page = await Promise.all(Array.from({ length: 40 }, (_, i) => recording(`left-${i}.mp4`, 10)));
    const left = new AbortController();
    const index = indexerFor(left.signal);
    const indexes = page.map((file) => index(file));
    await Promise.race(indexes);
    left.abort();
    const settled = await Promise.allSettled(indexes);
    // The first read, and at most the two being read when the client left; the others dropped unread.
    const read = settled.filter((s) => s.status === 'fulfilled').length;
    expect(read).toBeLessThanOrEqual(3);
    const dropped = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).name] : []));
    expect(dropped).toEqual(Array<string>(40 - read).fill('AbortError'));
    // No place was lost: another request's files are read two at a time as before.
    const after = await Promise.all(Array.from({ length: 3 }, (_, i) => recording(`after-${i}.mp4`, 2)));
    expect((await Promise.all(after.map(indexerFor()))).map((i) => i.duration)).toEqual([2, 2, 2]);
  });
});

describe('a fragment', () => {
  /** A trak of track `id` with `timescale` and a handler of `handler` (vide, soun). */
  const trak = (id: number, timescale: number, handler: string): Buffer =>
    box(
      'trak',
      box('tkhd', words(0, 0, 0, id)),
      box('mdia', box('mdhd', words(0, 0, 0, timescale)), box('hdlr', words(0, 0), Buffer.from(handler))),
    );
  /** A traf of track `id`: one sample of `duration` at `time`. */
  const traf = (id: number, time: number, duration: number): Buffer =>
    box('traf', box('tfhd', words(0, id)), box('tfdt', words(0, time)), box('trun', words(0x100, 1, duration)));

  it("is timed by its video track's samples, though the audio track's come first", async () => {
    const init = box('moov', trak(1, 48_000, 'soun'), trak(2, 1000, 'vide'));
    const moof = box('moof', traf(1, 96_000, 48_000), traf(2, 5000, 2000));
    const index = await indexerFor()(await fmp4File('audio-first.mp4', Buffer.concat([init, moof, box('mdat')])));
    expect(index.fragments.map((f) => [f.start, f.duration])).toEqual([[5, 2]]);
  });
});
