import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { configSchema, loadConfig, type Config } from '../config.ts';
import type { FlvTagRecord } from '../flv/demux.ts';
import { RecordingStore } from '../http/recording-store.ts';
import { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { lavfiClip, readFlvFile } from '../../test/support/flv-fixture.ts';
import { countFrames } from '../../test/support/processes.ts';
import { until } from '../../test/support/wait.ts';
import { Webhooks } from '../webhooks/webhooks.ts';
import { listRecordings } from './catalog.ts';
import { Recorder } from './recorder.ts';
import { indexerFor } from './recording-index.ts';
import { DISK_QUEUE_MAX_BYTES } from './segment-file.ts';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });
let clip: FlvTagRecord[];
let hub: StreamHub;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  // 6 s at 25 fps with a keyframe every second.
  clip = (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6 }))).tags;
});

afterEach(async () => {
  vi.useRealTimers();
  hub?.closeAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const config = (overrides: Partial<Config> = {}): Config => ({ ...configSchema.parse({}), recordingSegmentSeconds: 2, ...overrides });
const newHub = () => (hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 }));

/** A recorder on a new hub, writing to a new storage directory. */
async function startRecorder(overrides: Partial<Config> = {}): Promise<{ storageDir: string; recorder: Recorder }> {
  const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
  return { storageDir, recorder: new Recorder({ hub: newHub(), storageDir, config: config(overrides), logger }) };
}

/** The test clip with MP3 audio instead of AAC, as FLV. */
const mp3Clip = async () => readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', 'libmp3lame'] }));

/** Records `tags` published as live/`key` to their end; the files, oldest first. */
async function record(key: string, tags: FlvTagRecord[], overrides: Partial<Config> = {}) {
  const { storageDir, recorder } = await startRecorder(overrides);
  push(publish('live', key), 0, tags);
  hub.closeAll();
  await recorder.close();
  return listRecordings(storageDir);
}

function publish(app: string, key: string): Stream {
  return hub.publish(app, key, { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
}

/** Pushes the clip's tags, their timestamps moved by `offsetMs` (a later part of the same stream). */
function push(stream: Stream, offsetMs = 0, tags = clip): void {
  const now = performance.now();
  for (const tag of tags) {
    if (tag.kind === 'video') stream.pushVideo(tag.timestamp + offsetMs, tag.body, now);
    else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp + offsetMs, tag.body, now);
    else if (offsetMs === 0) stream.setMetadata(tag.timestamp, tag.body, {}, now);
  }
}

/**
 * Pushes `tags` in parts split at the timestamps `splits`, each a batch of
 * its own: the (faked) FLV batch timer runs after each part. Tags from `end`
 * on are left out.
 */
function pushInBatches(stream: Stream, tags: FlvTagRecord[], splits: number[], end = Infinity): void {
  const bounds = [-Infinity, ...splits, end];
  for (let i = 1; i < bounds.length; i++) {
    push(
      stream,
      0,
      tags.filter((t) => t.timestamp >= bounds[i - 1]! && t.timestamp < bounds[i]!),
    );
    vi.advanceTimersByTime(300);
  }
}

interface Probed {
  codecs: string[];
  duration: number;
  /** The first timestamp (ffprobe's duration runs from 0 to the last, for a file whose media starts later). */
  start: number;
}

async function ffprobe(path: string): Promise<Probed> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_name:format=duration,start_time',
    '-of',
    'json',
    path,
  ]);
  const out = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string; start_time: string } };
  return {
    codecs: out.streams.map((s) => s.codec_name).sort(),
    duration: Number(out.format.duration),
    start: Number(out.format.start_time),
  };
}

async function recordings(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).sort();
}

describe('Recorder', () => {
  it('records fragmented MP4 segments named by start time, each starting on a keyframe and playable by ffprobe', async () => {
    const { storageDir, recorder } = await startRecorder();
    const stream = publish('live', 'cam1');
    push(stream);
    // The publisher vanishes without any goodbye: every file must still be whole.
    hub.unpublish(stream);
    await recorder.close();
    expect(recorder.stats).toMatchObject({ errors: 0, dropped: 0 });
    const files = await recordings(join(storageDir, 'live', 'cam1'));
    expect(files.length).toBe(3);
    expect(recorder.stats.filesOpened).toBe(3);
    for (const name of files) expect(name).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z\.mp4$/);
    let total = 0;
    for (const name of files) {
      const probed = await ffprobe(join(storageDir, 'live', 'cam1', name));
      expect(probed.codecs).toEqual(['aac', 'h264']);
      expect(probed.duration).toBeGreaterThan(1.5);
      total += probed.duration;
    }
    expect(total).toBeGreaterThan(5.8);
  });

  it('records FLV segments when asked (per app by a rule) and nothing for an app a rule turns off', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const rules = [
      { app: 'flv', key: '*', format: 'flv' as const },
      { app: 'off', key: '*', enabled: false },
    ];
    const recorder = new Recorder({ hub: newHub(), storageDir, config: config({ recordingRules: rules }), logger });
    const flv = publish('flv', 'cam');
    const off = publish('off', 'cam');
    push(flv);
    push(off);
    hub.unpublish(flv);
    hub.unpublish(off);
    await recorder.close();
    const files = await recordings(join(storageDir, 'flv', 'cam'));
    expect(files.length).toBe(3);
    for (const name of files) {
      expect(name).toMatch(/\.flv$/);
      const probed = await ffprobe(join(storageDir, 'flv', 'cam', name));
      expect(probed.codecs).toEqual(['aac', 'h264']);
      expect(probed.duration).toBeGreaterThan(1.5);
      // The file's own, not the 6 s the publisher's onMetaData declares.
      expect(probed.duration - probed.start).toBeLessThan(2.5);
    }
    expect(await recordings(join(storageDir, 'off', 'cam'))).toEqual([]);
  });

  it('creates an FLV file with its first tags, so that a crash while they are gathered leaves no file with a header alone', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv' });
    const stream = publish('live', 'cam');
    push(
      stream,
      0,
      clip.filter((t) => t.timestamp < 100),
    );
    // The tags are gathered for 200 ms: the file is in use, and not on disk yet.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [path] = recorder.filesInUse();
    expect(await recordings(join(storageDir, 'live', 'cam'))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 250));
    hub.unpublish(stream);
    await recorder.close();
    expect((await ffprobe(path!)).codecs).toEqual(['aac', 'h264']);
  });

  it('keeps the files of ended segments in use until they are written out, synced and closed', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const closed: string[] = [];
    const recorder = new Recorder({ hub: newHub(), storageDir, config: config(), logger, onFileClosed: (path) => closed.push(path) });
    const stream = publish('live', 'cam');
    push(stream);
    hub.unpublish(stream);
    // Every segment has ended, and none is on disk whole yet: the files are opened and written asynchronously.
    const ending = [...recorder.filesInUse()];
    expect(ending.length).toBe(3);
    for (const path of ending) {
      await recorder.finishing(path);
      expect(closed).toContain(path);
      expect(recorder.filesInUse().has(path)).toBe(false);
      expect(recorder.finishing(path)).toBeUndefined();
    }
    expect((await recordings(join(storageDir, 'live', 'cam'))).map((name) => join(storageDir, 'live', 'cam', name))).toEqual(ending);
  });

  /** The tags (the clip) with their video frames at `atMs` carrying `bytes` of filler NAL units each. */
  function withHugeFrames(atMs: number[], bytes: number, tags = clip): FlvTagRecord[] {
    const filler = Buffer.alloc(bytes, 0xff);
    filler.writeUInt32BE(filler.length - 4);
    filler[4] = 12; // nal_unit_type 12: filler data
    const isFrame = (t: FlvTagRecord) => t.kind === 'video' && t.body[1] === 1;
    return tags.map((t) => (isFrame(t) && atMs.includes(t.timestamp) ? { ...t, body: Buffer.concat([t.body, filler]) } : t));
  }

  it('goes on at the next keyframe after a dropped fMP4 fragment, never with frames that need the lost one', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingSegmentSeconds: 60, recordingFragmentSeconds: 0.3 });
    const stream = publish('live', 'gap');
    // More than may queue behind the fragments before it: the keyframe's fragment is dropped.
    push(stream, 0, withHugeFrames([2000], 33 << 20));
    hub.unpublish(stream);
    await recorder.close();
    const [file, ...others] = await listRecordings(storageDir);
    expect(others).toEqual([]);
    const { fragments } = await indexerFor()(file!);
    const gaps = fragments.flatMap((f, i) => (i > 0 && f.start - (fragments[i - 1]!.start + fragments[i - 1]!.duration) > 0.01 ? [i] : []));
    expect(gaps).toHaveLength(1);
    expect(fragments[gaps[0]!]!.start).toBeCloseTo(3, 1); // the keyframe after the lost one
    expect(fragments[gaps[0]!]!.independent).toBe(true);
    expect(recorder.stats.dropped).toBeGreaterThan(1); // the lost fragment and those that needed it
    expect((await ffprobe(file!.path)).codecs).toEqual(['aac', 'h264']);
  });

  it('goes on at the next keyframe after a dropped FLV batch, never with frames that need the lost one', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv', recordingSegmentSeconds: 60 });
    const stream = publish('live', 'gap');
    // Three 12 MiB frames from 1 s, an append each (FLV_BATCH_MAX_BYTES): the third is more than may queue behind
    // the first two (the disk has written nothing yet: the timers run while no I/O can).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const tags = withHugeFrames([1000, 1040, 1080], 12 << 20);
    pushInBatches(stream, tags, [1000, 3001]);
    hub.unpublish(stream);
    await recorder.close();
    const [file] = await listRecordings(storageDir);
    const video = (await readFlvFile(file!.path)).tags.filter((t) => t.kind === 'video' && t.body[1] === 1);
    const afterGap = video.findIndex((t, i) => i > 0 && t.timestamp - video[i - 1]!.timestamp > 100);
    expect(video[afterGap - 1]!.timestamp).toBe(1040);
    expect(video[afterGap]!.timestamp).toBe(2000);
    expect(video[afterGap]!.body[0]! >> 4).toBe(1); // a keyframe
  });

  it('writes a fast FLV stream in appends of about 1 MiB and, once the disk is 32 MiB behind, drops them, counted, logged once a minute', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const lines: { level: number; msg: string; dropped?: number; queued?: number; gaps?: number }[] = [];
    const log = pino({}, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const recorder = new Recorder({
      hub: newHub(),
      storageDir,
      config: config({ recordingFormat: 'flv', recordingSegmentSeconds: 60 }),
      logger: log,
    });
    // 6 s of 1 MiB frames (210 Mb/s), pushed at once: the disk writes nothing meanwhile (no I/O runs during the push),
    // and no 200 ms batch timer fires either. Each GOP from the second on is a gap in the file; the last three come a
    // minute later.
    const frames = clip.filter((t) => t.kind === 'video' && t.body[1] === 1).map((t) => t.timestamp);
    const tags = withHugeFrames(frames, 1 << 20);
    const stream = publish('live', 'fast');
    push(
      stream,
      0,
      tags.filter((t) => t.timestamp < 3000),
    );
    const now = performance.now.bind(performance);
    const minuteLater = vi.spyOn(performance, 'now').mockImplementation(() => now() + 60_000);
    push(
      stream,
      0,
      tags.filter((t) => t.timestamp >= 3000),
    );
    minuteLater.mockRestore();
    hub.closeAll();
    await recorder.close();
    const [file, ...others] = await listRecordings(storageDir);
    expect(others).toEqual([]);
    // What the stream queued for the disk is the file: the bound, not the 150 MiB sent.
    expect(file!.size).toBeLessThanOrEqual(DISK_QUEUE_MAX_BYTES);
    expect(file!.size).toBeGreaterThan(DISK_QUEUE_MAX_BYTES - (3 << 20));
    expect(recorder.stats.dropped).toBeGreaterThan(0);
    const warnings = lines.filter((l) => l.msg.startsWith('recording dropped media: the disk is 32 MiB behind this stream'));
    // The gaps at 1.3 s and 2 s, then those at 3, 4 and 5 s: the first of each minute is logged, with the gaps since.
    expect(warnings.map((w) => w.gaps)).toEqual([1, 2]);
    expect(warnings[0]).toMatchObject({ level: 40, dropped: expect.any(Number), queued: expect.any(Number) });
    expect(warnings[0]!.dropped! + warnings[0]!.queued!).toBeGreaterThan(DISK_QUEUE_MAX_BYTES);
    expect(warnings[0]!.dropped!).toBeLessThan(3 << 20);
  });

  /** Pushes the tags in parts, each once the disk has written everything before it: nothing is queued when it comes. */
  async function pushWhenDrained(recorder: Recorder, stream: Stream, parts: FlvTagRecord[][]): Promise<void> {
    for (const part of parts) {
      push(stream, 0, part);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the FLV batch timer (200 ms) has run
      await until(() => [...recorder.writing().values()].reduce((a, b) => a + b, 0) === recorder.stats.bytesWritten);
    }
  }

  // An FLV append is at most FLV_BATCH_MAX_BYTES plus one tag (under 16 MiB): never larger than the queue.
  it('writes an fMP4 append larger than the disk queue that comes while nothing is queued (a 33 MiB keyframe)', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingSegmentSeconds: 60, recordingFragmentSeconds: 1 });
    const stream = publish('live', 'big');
    // The fragment from 2 s holds a 33 MiB keyframe, cut at the sample after it (8 MiB, MAX_FRAGMENT_BYTES, are passed).
    const tags = withHugeFrames([2000], 33 << 20);
    const cut = tags.findIndex((t) => t.kind === 'video' && t.timestamp === 2000) + 1;
    await pushWhenDrained(recorder, stream, [tags.slice(0, cut), tags.slice(cut, cut + 1), tags.slice(cut + 1)]);
    hub.unpublish(stream);
    await recorder.close();
    expect(recorder.stats.dropped).toBe(0);
    const [file, ...others] = await listRecordings(storageDir);
    expect(others).toEqual([]);
    expect(file!.size).toBeGreaterThan(33 << 20);
    expect(recorder.stats.bytesWritten).toBe(file!.size);
    expect((await countFrames(file!.path)).frames['h264']).toBe(150);
  });

  it('keeps a new decoder config that comes while an FLV file waits for a keyframe after a dropped batch', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv', recordingSegmentSeconds: 60 });
    const stream = publish('live', 'gap');
    // As in the test above, the third of three 12 MiB frames is dropped, the last before 3 s; then the publisher goes
    // on at 640x360.
    const tags = withHugeFrames([2880, 2920, 2960], 12 << 20);
    const bigger = (await readFlvFile(await lavfiClip({ width: 640, height: 360, seconds: 2 }))).tags.filter((t) => t.kind !== 'data');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    pushInBatches(stream, tags, [1000, 3000], 3000);
    push(stream, 3040, bigger);
    hub.unpublish(stream);
    await recorder.close();
    const [file, ...others] = await listRecordings(storageDir);
    expect(others).toEqual([]);
    const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', file!.path, '-f', 'null', '-']);
    expect(stderr).toBe('');
    expect((await countFrames(file!.path)).frames['h264']).toBe(74 + 50); // to 2.92 s, then the 640x360 ones
  });

  it('removes a file whose first fMP4 fragment is dropped; the next keyframe starts the next file, named by its time', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingSegmentSeconds: 3, recordingFragmentSeconds: 0.3 });
    // The second file would start at the 3 s keyframe, whose fragment is more than may queue behind the first file's.
    push(publish('live', 'first'), 0, withHugeFrames([3000], 33 << 20));
    hub.closeAll();
    await recorder.close();
    const files = await listRecordings(storageDir);
    expect(files).toHaveLength(2);
    const [first, second] = await Promise.all(files.map(async (file) => (await indexerFor()(file)).fragments[0]!));
    expect(second!.start).toBeCloseTo(4, 1);
    expect(second!.independent).toBe(true);
    // Names carry the wall clock of each file's first fragment (the clip is pushed at once: wall clock = media time).
    const between = files[1]!.start.getTime() - files[0]!.start.getTime();
    expect(Math.abs(between - (second!.start - first!.start) * 1000)).toBeLessThan(5);
    // The bytes dropped are not counted as written, nor the removed file's header.
    expect(recorder.stats.bytesWritten).toBe(files[0]!.size + files[1]!.size);
  });

  it('removes a file whose first FLV tags are dropped; the next keyframe starts the next file, with its headers there', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv', recordingSegmentSeconds: 3 });
    const stream = publish('live', 'first');
    // The second file starts at the 3 s keyframe, which holds 12 MiB: more than may queue behind the first file's
    // two 12 MiB frames before it (the disk has written nothing yet: the timers run while no I/O can).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const tags = withHugeFrames([2880, 2920, 3000], 12 << 20);
    pushInBatches(stream, tags, [3000, 3100]);
    hub.unpublish(stream);
    await recorder.close();
    const files = await listRecordings(storageDir);
    expect(files).toHaveLength(2);
    const media = (await readFlvFile(files[1]!.path)).tags.filter((t) => t.kind !== 'data');
    const video = media.filter((t) => t.kind === 'video');
    expect(video.slice(0, 2).map((t) => [t.timestamp, t.body[0]! >> 4, t.body[1]])).toEqual([
      [4000, 1, 0], // the sequence header, at the keyframe it goes with
      [4000, 1, 1], // the keyframe
    ]);
    // The recordings API's duration is the media's, from that keyframe on.
    expect((await indexerFor()(files[1]!)).duration).toBe((media.at(-1)!.timestamp - 4000) / 1000);
    // The bytes dropped are not counted as written, nor the removed file's header.
    expect(recorder.stats.bytesWritten).toBe(files[0]!.size + files[1]!.size);
  });

  it('starts a file only on a keyframe, however far apart keyframes are (an fMP4 segment is not cut between them)', async () => {
    // 14 s with keyframes at 0 and 12 s; files of 2 s.
    const longGop = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '300', '-sc_threshold', '0'];
    const tags = (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 14, videoCodec: longGop }))).tags;
    const files = await record('longgop', tags);
    const starts = await Promise.all(files.map(async (file) => (await indexerFor()(file)).fragments[0]!));
    expect(starts.map((f) => [Math.round(f.start), f.independent])).toEqual([
      [0, true],
      [12, true],
    ]);
    for (const file of files) expect((await countFrames(file.path)).frames['h264']).toBeGreaterThan(0);
  });

  /** An intra-refresh encoder's video: a keyframe at 0, then only interframes, every 100 ms for `seconds`. */
  function intraRefresh(seconds: number): FlvTagRecord[] {
    const [sequenceHeader, keyframe, interframe] = [0x17, 0x17, 0x27].map((first, i) =>
      clip.find((t) => t.kind === 'video' && t.body[0] === first && t.body[1] === (i === 0 ? 0 : 1)),
    );
    return [
      { ...sequenceHeader!, timestamp: 0 },
      { ...keyframe!, timestamp: 0 },
      ...Array.from({ length: seconds * 10 }, (_, i) => ({ ...interframe!, timestamp: (i + 1) * 100 })),
    ];
  }

  /** Each file's first media time, in whole seconds. */
  async function fileStarts(storageDir: string, format: 'fmp4' | 'flv'): Promise<number[]> {
    const starts = await Promise.all(
      (await listRecordings(storageDir)).map(async (file) =>
        format === 'fmp4'
          ? (await indexerFor()(file)).fragments[0]!.start
          : (await readFlvFile(file.path)).tags.find((t) => t.kind !== 'data')!.timestamp / 1000,
      ),
    );
    return starts.map(Math.round);
  }

  for (const format of ['fmp4', 'flv'] as const) {
    it(`cuts a ${format} file that sees no keyframe for 5 minutes (intra refresh), so that no file grows without bound`, async () => {
      const { storageDir, recorder } = await startRecorder({ recordingFormat: format });
      push(publish('live', 'refresh'), 0, intraRefresh(310));
      hub.closeAll();
      await recorder.close();
      expect(await fileStarts(storageDir, format)).toEqual([0, 300]);
    });
  }

  for (const [format, dropAtMs, starts] of [
    ['fmp4', 1000, [0, 300, 600]], // the file goes on without the lost fragment; the next one starts at any frame
    ['flv', 1000, [0, 300, 600]],
    ['flv', 300_000, [0, 600]], // the second file's first tags are lost: it is removed, and the wait is bounded from its start
  ] as const) {
    it(`resumes an intra-refresh ${format} recording in a new file 5 minutes after the file whose append at ${dropAtMs} ms was dropped`, async () => {
      const { storageDir, recorder } = await startRecorder({ recordingFormat: format });
      const stream = publish('live', 'refresh');
      // 12 MiB frames to dropAtMs, an append each: the third is more than may queue behind the first two (the disk
      // has written nothing yet: the timers, which write FLV batches, run while no I/O can).
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tags = withHugeFrames([dropAtMs - 200, dropAtMs - 100, dropAtMs], 12 << 20, intraRefresh(610));
      pushInBatches(stream, tags, [dropAtMs, dropAtMs + 300]);
      hub.unpublish(stream);
      await recorder.close();
      expect(recorder.stats.dropped).toBeGreaterThan(0);
      expect(await fileStarts(storageDir, format)).toEqual(starts);
    });
  }

  for (const [atMs, firstCodecs] of [
    [70, ['aac', 'h264']], // while the first fragment gathers: it takes the audio in
    [1500, ['h264']], // after a fragment of the file left: the audio waits for the next file, at the next keyframe
  ] as const) {
    it(`loses nothing of a late audio config, ${atMs} ms into an fMP4 file`, async () => {
      const audioHeader = clip.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
      const audio = clip.filter((t) => t.kind === 'audio' && t.body[1] === 1 && t.timestamp >= atMs);
      const tags = clip.flatMap((t) => {
        if (t.kind !== 'audio') return [t];
        if (t === audio[0]) return [{ ...audioHeader, timestamp: t.timestamp }, t];
        return audio.includes(t) ? [t] : [];
      });
      const files = await record('late', tags);
      expect(files).toHaveLength(3);
      expect((await ffprobe(files[0]!.path)).codecs).toEqual(firstCodecs);
      const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames));
      expect(counted.reduce((sum, frames) => sum + frames['h264']!, 0)).toBe(150);
      expect(counted.reduce((sum, frames) => sum + (frames['aac'] ?? 0), 0)).toBe(audio.length);
    });
  }

  for (const [codec, clipTags, frame] of [
    ['AAC', async () => clip, 1024 / 44_100],
    ['MP3', async () => (await mp3Clip()).tags, 1152 / 44_100],
  ] as const) {
    it(`keeps the ${codec} sound in place across a short audio pause within an fMP4 fragment: silence fills it, the tone comes back on time`, async () => {
      // 2.2 s to 2.6 s without audio frames (a muted source), inside the 1 s fragment from 2 s. Before, the tone after the
      // pause went on from 2.2 s: early by the pause until the next fragment's start put it back.
      const [from, to] = [2200, 2600];
      const isFrame = (t: FlvTagRecord) => t.kind === 'audio' && !(t.body[0]! >> 4 === 10 && t.body[1] === 0);
      const tags = (await clipTags()).filter((t) => !(isFrame(t) && t.timestamp >= from && t.timestamp < to));
      const soundBack = tags.find((t) => isFrame(t) && t.timestamp >= to)!.timestamp / 1000;
      // 2 s files: the second holds the pause.
      const file = (await record('pause', tags))[1]!;
      const { stdout } = await run('ffprobe', [
        ...['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts_time,size', '-of', 'json', file.path],
      ]);
      const audio = (JSON.parse(stdout) as { packets: { pts_time: string; size: string }[] }).packets.map((p) => ({
        pts: Number(p.pts_time),
        size: Number(p.size),
      }));
      // Every frame follows the one before, and the tone (more bytes than a silent frame, the smallest) comes back
      // within one frame of its timestamp.
      for (let i = 1; i < audio.length; i++) expect(audio[i]!.pts - audio[i - 1]!.pts).toBeCloseTo(frame, 4);
      const silent = Math.min(...audio.map((p) => p.size));
      const back = audio.find((p) => p.pts > from / 1000 && p.size > silent)!.pts;
      expect(Math.abs(back - soundBack)).toBeLessThan(frame);
    });
  }

  it('writes audio held for the next fMP4 file as an audio-only file when the stream ends before the keyframe that would start it', async () => {
    const audioHeader = clip.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
    // Audio from 1.5 s (after the file's first fragment left); the stream ends at 1.9 s, before the 2 s keyframe.
    const audio = clip.filter((t) => t.kind === 'audio' && t.body[1] === 1 && t.timestamp >= 1500 && t.timestamp < 1900);
    const tags = [
      ...clip.filter((t) => t.kind !== 'audio' && t.timestamp < 1900),
      { ...audioHeader, timestamp: audio[0]!.timestamp },
      ...audio,
    ].sort((a, b) => a.timestamp - b.timestamp);
    const files = await record('late', tags);
    expect(files).toHaveLength(2);
    expect((await ffprobe(files[1]!.path)).codecs).toEqual(['aac']);
    expect((await countFrames(files[1]!.path)).frames['aac']).toBe(audio.length);
    const [video, held] = await Promise.all(files.map(async (file) => (await indexerFor()(file)).fragments[0]!.start));
    expect(held! - video!).toBeCloseTo(audio[0]!.timestamp / 1000, 2);
  });

  for (const change of ['a new video config', 'a step back of the clock'] as const) {
    it(`writes audio held for the next fMP4 file as an audio-only file when ${change} ends the timeline before the keyframe that would start it`, async () => {
      const audioHeader = clip.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
      // Audio from 1.5 s (after the file's first fragment left), held for the 2 s keyframe; at 1.9 s the timeline ends.
      const held = clip.filter((t) => t.kind === 'audio' && t.body[1] === 1 && t.timestamp >= 1500 && t.timestamp < 1900);
      const before = [
        ...clip.filter((t) => t.kind !== 'audio' && t.timestamp < 1900),
        { ...audioHeader, timestamp: held[0]!.timestamp },
        ...held,
      ].sort((a, b) => a.timestamp - b.timestamp);
      // The same encoder at 640x360 from 1.9 s (a new video config), or the clip again from 0 (the clock steps back).
      const after =
        change === 'a new video config'
          ? (await readFlvFile(await lavfiClip({ width: 640, height: 360, seconds: 2 }))).tags.map((t) => ({
              ...t,
              timestamp: t.timestamp + 1900,
            }))
          : clip;
      const { storageDir, recorder } = await startRecorder();
      const stream = publish('live', 'held');
      push(stream, 0, before);
      push(
        stream,
        0,
        after.filter((t) => t.kind !== 'data'),
      );
      hub.closeAll();
      await recorder.close();
      const files = await listRecordings(storageDir);
      const codecs = await Promise.all(files.map(async (file) => (await ffprobe(file.path)).codecs));
      expect(codecs[1]).toEqual(['aac']);
      const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames));
      const afterAudio = after.filter((t) => t.kind === 'audio' && t.body[1] === 1);
      expect(counted[1]!['aac']).toBe(held.length);
      expect(counted.reduce((sum, frames) => sum + (frames['aac'] ?? 0), 0)).toBe(held.length + afterAudio.length);
    });
  }

  for (const format of ['fmp4', 'flv'] as const) {
    it(`starts a new ${format} file when the publisher's audio switches from AAC to MP3, and loses no audio frame`, async () => {
      const aac = clip.filter((t) => t.kind === 'audio' && t.timestamp < 2500);
      const mp3 = (await mp3Clip()).tags.filter((t) => t.kind === 'audio' && t.timestamp >= 2500);
      const tags = [...clip.filter((t) => t.kind !== 'audio'), ...aac, ...mp3].sort((a, b) => a.timestamp - b.timestamp);
      const files = await record('switch', tags, { recordingFormat: format });
      // The switch comes at 2.5 s, in the second file (2-4 s): the MP3 since then starts the third, at the 3 s keyframe.
      expect(await Promise.all(files.map(async (file) => (await ffprobe(file.path)).codecs))).toEqual([
        ['aac', 'h264'],
        ['aac', 'h264'],
        ['h264', 'mp3'],
        ['h264', 'mp3'],
      ]);
      const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames));
      const total = (codec: string) => counted.reduce((sum, frames) => sum + (frames[codec] ?? 0), 0);
      expect(total('aac')).toBe(aac.filter((t) => t.body[1] === 1).length);
      expect(total('mp3')).toBe(mp3.length);
      expect(total('h264')).toBe(150);
    });
  }

  it('leaves out of FLV files AAC frames that follow MP3 with no AAC config: they are not written as MP3', async () => {
    const mp3 = (await mp3Clip()).tags.filter((t) => t.kind === 'audio' && t.timestamp < 2500);
    const aacFrames = clip.filter((t) => t.kind === 'audio' && t.timestamp >= 2500 && t.body[1] === 1);
    const tags = [...clip.filter((t) => t.kind !== 'audio'), ...mp3, ...aacFrames].sort((a, b) => a.timestamp - b.timestamp);
    const files = await record('no-config', tags, { recordingFormat: 'flv' });
    const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames));
    expect(counted.reduce((sum, frames) => sum + (frames['mp3'] ?? 0), 0)).toBe(mp3.length);
    expect(counted.every((frames) => frames['aac'] === undefined)).toBe(true);
  });

  for (const end of ['the stream ends', "the publisher's clock steps back"] as const) {
    it(`writes MP3 held for the next FLV file (after AAC) as an audio-only file when ${end} before the keyframe that would start it`, async () => {
      // AAC to 1.5 s, then MP3; the timeline ends at 1.9 s, before the 2 s keyframe.
      const held = (await mp3Clip()).tags.filter((t) => t.kind === 'audio' && t.timestamp >= 1500 && t.timestamp < 1900);
      const before = [...clip.filter((t) => t.timestamp < (t.kind === 'audio' ? 1500 : 1900)), ...held].sort(
        (a, b) => a.timestamp - b.timestamp,
      );
      const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv' });
      const stream = publish('live', 'held');
      push(stream, 0, before);
      if (end !== 'the stream ends')
        push(
          stream,
          0,
          clip.filter((t) => t.kind !== 'data'),
        );
      hub.closeAll();
      await recorder.close();
      const files = await listRecordings(storageDir);
      expect(files).toHaveLength(end === 'the stream ends' ? 2 : 5);
      expect((await ffprobe(files[1]!.path)).codecs).toEqual(['mp3']);
      expect((await countFrames(files[1]!.path)).frames['mp3']).toBe(held.length);
    });
  }

  it('gives MP3 between AAC and AAC within one GOP an FLV file of its own, audio only: each file holds one audio codec', async () => {
    // AAC, MP3 from 1.5 s, AAC again (its config first) from 1.8 s; keyframes every second.
    const mp3 = (await mp3Clip()).tags.filter((t) => t.kind === 'audio' && t.timestamp >= 1500 && t.timestamp < 1800);
    const aacHeader = clip.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
    const aac = clip.filter((t) => t.kind === 'audio' && (t.timestamp < 1500 || t.timestamp >= 1800));
    const tags = [...clip.filter((t) => t.kind !== 'audio'), ...aac, { ...aacHeader, timestamp: 1800 }, ...mp3].sort(
      (a, b) => a.timestamp - b.timestamp || Number(b.body[1] === 0) - Number(a.body[1] === 0),
    );
    const files = await record('flip', tags, { recordingFormat: 'flv' });
    // The MP3 does not go into the file the 2 s keyframe starts, ahead of the AAC after it (that would make three files).
    expect(await Promise.all(files.map(async (file) => (await ffprobe(file.path)).codecs))).toEqual([
      ['aac', 'h264'],
      ['mp3'],
      ['aac', 'h264'],
      ['aac', 'h264'],
    ]);
    const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames));
    expect(counted[1]!['mp3']).toBe(mp3.length);
    expect(counted.reduce((sum, frames) => sum + (frames['aac'] ?? 0), 0)).toBe(aac.filter((t) => t.body[1] === 1).length);
  });

  it('keeps audio held for the next fMP4 file when another audio config comes before that file starts', async () => {
    // 44.1 kHz AAC from 1.5 s (after the file's first fragment left: held for the 2 s keyframe), 22.05 kHz AAC from 1.7 s.
    const other = (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', 'aac', '-ar', '22050'] })))
      .tags;
    const audioFrom = (tags: FlvTagRecord[], from: number, to = Infinity) => {
      const header = tags.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
      const frames = tags.filter((t) => t.kind === 'audio' && t.body[1] === 1 && t.timestamp >= from && t.timestamp < to);
      return { frames, tags: [{ ...header, timestamp: frames[0]!.timestamp }, ...frames] };
    };
    const [first, second] = [audioFrom(clip, 1500, 1700), audioFrom(other, 1700)];
    const tags = [...clip.filter((t) => t.kind !== 'audio'), ...first.tags, ...second.tags].sort((a, b) => a.timestamp - b.timestamp);
    const files = await record('twice', tags);
    const counted = await Promise.all(files.map(async (file) => (await countFrames(file.path)).frames['aac'] ?? 0));
    // The second config must not replace the first's held frames.
    expect(counted.reduce((sum, frames) => sum + frames, 0)).toBe(first.frames.length + second.frames.length);
  });

  it('holds a late audio config for the next fMP4 file at most 4 MiB of audio, then cuts the file at any frame (no keyframe comes)', async () => {
    const [sequenceHeader, keyframe, interframe] = [0x17, 0x17, 0x27].map((first, i) =>
      clip.find((t) => t.kind === 'video' && t.body[0] === first && t.body[1] === (i === 0 ? 0 : 1)),
    );
    const audioHeader = clip.find((t) => t.kind === 'audio' && t.body[1] === 0)!;
    const audioFrame = clip.find((t) => t.kind === 'audio' && t.body[1] === 1)!;
    // From 1.5 s, 64 KiB audio frames every 40 ms: 4 MiB by 4.1 s. Keyframes come only at 0.
    const bigAudio = Buffer.concat([audioFrame.body, Buffer.alloc(64 << 10)]);
    const tags: FlvTagRecord[] = [
      { ...sequenceHeader!, timestamp: 0 },
      { ...keyframe!, timestamp: 0 },
      ...Array.from({ length: 150 }, (_, i) => [
        ...(i === 37 ? [{ ...audioHeader, timestamp: 1500 }] : []),
        ...(i > 37 ? [{ ...audioFrame, body: bigAudio, timestamp: i * 40 }] : []),
        { ...interframe!, timestamp: (i + 1) * 40 },
      ]).flat(),
    ];
    const files = await record('held', tags);
    expect(files).toHaveLength(2);
    const second = (await indexerFor()(files[1]!)).fragments[0]!;
    expect(second.start).toBeCloseTo(4.12, 1);
    expect((await ffprobe(files[1]!.path)).codecs).toEqual(['aac', 'h264']);
  });

  it('holds MP3 for the next FLV file (after AAC) at most 4 MiB, then starts that file at once (no keyframe comes)', async () => {
    const mp3Frame = (await mp3Clip()).tags.find((t) => t.kind === 'audio')!;
    // AAC to 1.5 s, then 64 KiB MP3 frames every 40 ms. Keyframes come only at 0.
    const big = { ...mp3Frame, body: Buffer.concat([mp3Frame.body, Buffer.alloc(64 << 10)]) };
    const video = intraRefresh(6);
    const mp3 = Array.from({ length: 100 }, (_, i) => ({ ...big, timestamp: 1500 + i * 40 }));
    const tags = [...video, ...clip.filter((t) => t.kind === 'audio' && t.timestamp < 1500), ...mp3].sort(
      (a, b) => a.timestamp - b.timestamp,
    );
    const files = await record('held', tags, { recordingFormat: 'flv' });
    expect(files).toHaveLength(2);
    const second = (await readFlvFile(files[1]!.path)).tags;
    // The 65th frame, at 4.06 s, passes 4 MiB: the second file goes on with the video frame after it.
    expect(second.find((t) => t.kind === 'video' && t.body[1] === 1)!.timestamp).toBe(4100);
    const mp3Tags = await Promise.all(
      files.map(async (file) => (await readFlvFile(file.path)).tags.filter((t) => t.kind === 'audio' && t.body[0]! >> 4 === 2)),
    );
    expect(mp3Tags.map((t) => t.length)).toEqual([0, mp3.length]);
  });

  it('holds MP3 for the next FLV file (after AAC) at most 10,000 tags, however small, then starts that file at once', async () => {
    const mp3Frame = (await mp3Clip()).tags.find((t) => t.kind === 'audio')!;
    // AAC to 1.5 s, then 12,000 MP3 tags of the frame's header alone (200 KiB in all), ten a millisecond. Keyframes come only at 0.
    const tiny = { ...mp3Frame, body: mp3Frame.body.subarray(0, 5) };
    const mp3 = Array.from({ length: 12_000 }, (_, i) => ({ ...tiny, timestamp: 1500 + Math.floor(i / 10) }));
    const tags = [...intraRefresh(6), ...clip.filter((t) => t.kind === 'audio' && t.timestamp < 1500), ...mp3].sort(
      (a, b) => a.timestamp - b.timestamp,
    );
    const files = await record('held', tags, { recordingFormat: 'flv' });
    expect(files).toHaveLength(2);
    const second = (await readFlvFile(files[1]!.path)).tags;
    // The 10,000th tag, at 2.499 s, starts the second file (without the count, the MP3 waited for the stream's end, audio only).
    expect(second.find((t) => t.kind === 'audio')!.timestamp).toBe(1500);
    expect(second.find((t) => t.kind === 'video' && t.body[1] === 1)!.timestamp).toBe(2500);
    expect(second.filter((t) => t.kind === 'audio').length).toBe(mp3.length);
  });

  it('splits FLV files across the wrap of the 32-bit timestamp, and indexes their duration across it', async () => {
    const { storageDir, recorder } = await startRecorder({ recordingFormat: 'flv' });
    // The timestamps wrap to 0 at 3 s into the clip, in the middle of the second file.
    const stream = publish('live', 'wrap');
    const now = performance.now();
    for (const tag of clip.filter((t) => t.kind !== 'data')) {
      const timestamp = (tag.timestamp + 2 ** 32 - 3000) % 2 ** 32;
      if (tag.kind === 'video') stream.pushVideo(timestamp, tag.body, now);
      else stream.pushAudio(timestamp, tag.body, now);
    }
    hub.unpublish(stream);
    await recorder.close();
    const files = await listRecordings(storageDir);
    const durations = await Promise.all(files.map(async (file) => (await indexerFor()(file)).duration));
    expect(durations.map((d) => Math.round(d))).toEqual([2, 2, 2]);
  });

  for (const format of ['fmp4', 'flv'] as const) {
    it(`starts a new ${format} file at the next keyframe when the publisher's clock steps back; a file's timestamps only go forward`, async () => {
      const { storageDir, recorder } = await startRecorder({ recordingFormat: format });
      // 10-16 s, then the same clip again at 0-6 s.
      const stream = publish('live', 'back');
      push(stream, 10_000);
      push(
        stream,
        0,
        clip.filter((t) => t.kind !== 'data'),
      );
      hub.unpublish(stream);
      await recorder.close();
      const files = await listRecordings(storageDir);
      const starts: number[] = [];
      for (const file of files) {
        const times =
          format === 'fmp4'
            ? (await indexerFor()(file)).fragments.map((f) => f.start)
            : (await readFlvFile(file.path)).tags.filter((t) => t.kind === 'video').map((t) => t.timestamp / 1000);
        expect(times.toSorted((a, b) => a - b)).toEqual(times);
        starts.push(Math.round(times[0]!));
      }
      expect(starts).toEqual([10, 12, 14, 0, 2, 4]);
    });
  }

  it('removes a file whose media was all dropped and does not announce it; a normal file is announced (webhook receiver over HTTP)', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const events: { type: string; data: { path: string } }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        events.push(JSON.parse(body) as (typeof events)[number]);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => receiver.close(resolve)));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const { config: options } = loadConfig(
      ['--storage-dir', storageDir, '--webhook-urls', url, '--webhook-events', 'recording.completed'],
      {},
    );
    const closed: string[] = [];
    const recorder: Recorder = new Recorder({
      hub: newHub(),
      storageDir,
      config: config(),
      logger,
      onFileClosed: (path) => {
        closed.push(path);
        webhooks.recordingCompleted(path);
      },
    });
    const webhooks = await Webhooks.start({ hub, config: options, recordings: new RecordingStore(storageDir, recorder), logger });

    // The second file starts with a keyframe holding 33 MiB of filler NAL units: its fragment is more than may queue
    // behind the first file's, so it is dropped and the second file keeps only its header.
    const dropped = publish('live', 'dropped');
    push(
      dropped,
      0,
      withHugeFrames([2000], 33 << 20).filter((t) => t.timestamp <= 2000),
    );
    hub.unpublish(dropped);
    const [first, removed, ...others] = [...recorder.filesInUse()].toSorted();
    expect(others).toEqual([]);
    await Promise.all([recorder.finishing(first!), recorder.finishing(removed!)]);
    expect(recorder.stats.dropped).toBe(1);
    expect(await recordings(join(storageDir, 'live', 'dropped'))).toEqual([basename(first!)]);

    const kept = publish('live', 'kept');
    push(kept);
    hub.unpublish(kept);
    await recorder.close();
    await webhooks.close(5000);
    const written = [first!, ...(await recordings(join(storageDir, 'live', 'kept'))).map((name) => join(storageDir, 'live', 'kept', name))];
    expect(written.length).toBe(4);
    // Files finish on their own writes: a short last file may close before the one before it.
    expect(closed.toSorted()).toEqual(written);
    const announced = events.map((e) => [e.type, join(storageDir, e.data.path)]).toSorted(([, a], [, b]) => a!.localeCompare(b!));
    expect(announced).toEqual(written.map((path) => ['recording.completed', path]));
  });

  it('warns once per stream of each track fMP4 cannot carry, says so in its state, and says recording started only when a file is written', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    const logged: { level: number; msg: string; stream?: string; codec?: string }[] = [];
    const capture = pino({}, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) });
    const recorder = new Recorder({ hub: newHub(), storageDir, config: config(), logger: capture });
    const clipOf = async (videoCodec: string[]) =>
      (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 3, videoCodec, audioCodec: ['-c:a', 'pcm_s16le'] }))).tags;
    const sorenson = publish('live', 'sorenson');
    push(sorenson, 0, await clipOf(['-c:v', 'flv1']));
    const h264 = publish('live', 'h264');
    push(h264, 0, await clipOf(['-c:v', 'libx264', '-g', '25']));
    // The streams API: nothing of the Sorenson/PCM stream is written; the H.264 stream's files leave out its PCM.
    expect([recorder.stateOf(sorenson), recorder.leftOutOf(sorenson)]).toEqual(['unsupported_codec', ['FLV video codec id 2', 'pcm']]);
    expect([recorder.stateOf(h264), recorder.leftOutOf(h264)]).toEqual(['recording', ['pcm']]);
    hub.closeAll();
    await recorder.close();

    const said = (msg: string) => logged.filter((line) => line.msg.startsWith(msg)).map(({ stream, codec }) => ({ stream, codec }));
    expect(said('recording leaves out')).toEqual([
      { stream: sorenson.id, codec: 'FLV video codec id 2' },
      { stream: sorenson.id, codec: 'pcm' },
      { stream: h264.id, codec: 'pcm' },
    ]);
    expect(said('recording started')).toEqual([{ stream: h264.id, codec: undefined }]);
    expect(await recordings(join(storageDir, 'live', 'sorenson'))).toEqual([]);
    const [first] = await recordings(join(storageDir, 'live', 'h264'));
    expect((await ffprobe(join(storageDir, 'live', 'h264', first!))).codecs).toEqual(['h264']);
  });

  it('names the files of a stream published again at once after those of its last publish, even within the same millisecond', async () => {
    const { storageDir, recorder } = await startRecorder();
    // Both publishes' packets arrive at the same instant: their files would start at the same times. Before,
    // the second publish's first file got the first's name, which 'wx' refused as a disk error (the network
    // fuzzer's clients publish one key again and again).
    const at = performance.now();
    for (let publishes = 0; publishes < 2; publishes++) {
      const stream = publish('live', 'again');
      for (const tag of clip) {
        if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, at);
        else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, at);
      }
      hub.unpublish(stream);
    }
    await recorder.close();
    expect(recorder.stats).toMatchObject({ errors: 0, filesOpened: 6 });
    expect(await recordings(join(storageDir, 'live', 'again'))).toHaveLength(6);
  });

  it('logs and counts a disk error instead of crashing, and the stream goes on', async () => {
    const storageDir = await mkdtemp(join(tmpdir(), 'rtmpd-rec-'));
    // A file where the app directory should be: mkdir fails.
    await writeFile(join(storageDir, 'live'), 'not a directory');
    const recorder = new Recorder({ hub: newHub(), storageDir, config: config(), logger });
    const stream = publish('live', 'cam1');
    push(stream);
    await new Promise((r) => setTimeout(r, 200));
    expect(recorder.stats.errors).toBeGreaterThanOrEqual(1);
    expect(recorder.stateOf(stream)).toBe('failed');
    expect(stream.stats.videoFrames).toBe(150);
    await recorder.close();
  });

  it('on a full disk stops with every file playable, says disk_full, and resumes when space returns', async () => {
    const mountPoint = await mkdtemp(join(tmpdir(), 'rtmpd-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    cleanups.push(() => run('umount', ['-l', mountPoint]));
    // Leave about 160 KiB: the 320x180 clip writes about 60 KiB a second.
    const filler = join(mountPoint, 'filler');
    await writeFile(filler, Buffer.alloc(1024 * 1024 - 160 * 1024));
    const storageDir = join(mountPoint, 'storage');
    const recorder = new Recorder({ hub: newHub(), storageDir, config: config({ recordingFragmentSeconds: 0.5 }), logger });
    const stream = publish('live', 'cam');
    push(stream);
    await until(() => recorder.stateOf(stream) === 'disk_full');
    // Files queued before the first error was known fail too.
    expect(recorder.stats.diskFull).toBeGreaterThanOrEqual(1);
    expect(stream.stats.videoFrames).toBe(150); // the live stream went on
    const dir = join(storageDir, 'live', 'cam');
    const written = await recordings(dir);
    expect(written.length).toBeGreaterThan(0);
    for (const name of written) expect((await ffprobe(join(dir, name))).codecs).toEqual(['aac', 'h264']);

    // Space returns; after the retry delay the next keyframe starts a new file.
    await rm(filler);
    await new Promise((r) => setTimeout(r, 5200));
    push(stream, 7000, clip.filter((t) => t.kind !== 'data').slice(0, 60));
    push(
      stream,
      9500,
      clip.filter((t) => t.kind !== 'data'),
    );
    hub.unpublish(stream);
    await recorder.close();
    const after = await recordings(dir);
    expect(after.length).toBeGreaterThan(written.length);
    expect(recorder.stateOf(stream)).toBeUndefined();
    for (const name of after) expect((await ffprobe(join(dir, name))).codecs).toEqual(['aac', 'h264']);
  });
});
