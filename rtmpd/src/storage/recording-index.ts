// What a recording file holds, read from its structure rather than decoded:
// for fMP4 the init segment and every complete fragment (offset, size, start,
// duration, whether it starts on a keyframe), read box header by box header;
// for FLV the first and last media timestamps. A file cut short (a crash, a
// full disk) is indexed up to its last complete fragment. Indexes are cached
// by path, size and modification time.
import { open, type FileHandle } from 'node:fs/promises';
import type { RecordingFile } from './catalog.ts';

export interface FragmentEntry {
  offset: number;
  size: number;
  /** Media time of the first sample, seconds. */
  start: number;
  duration: number;
  independent: boolean;
}

export interface RecordingIndex {
  /** Bytes of ftyp + moov at the start (fMP4); 0 for FLV. */
  initSize: number;
  /** Complete fragments in file order (fMP4); empty for FLV. */
  fragments: FragmentEntry[];
  duration: number;
}

const CACHE_ENTRIES = 512;
const cache = new Map<string, { key: string; index: RecordingIndex }>();

export async function indexRecording(file: RecordingFile): Promise<RecordingIndex> {
  const key = `${file.size}:${file.modified.getTime()}`;
  const cached = cache.get(file.path);
  if (cached?.key === key) return cached.index;
  let index: RecordingIndex;
  const handle = await open(file.path, 'r');
  try {
    index = file.format === 'fmp4' ? await indexMp4(handle, file.size) : await indexFlv(handle, file.size);
  } finally {
    await handle.close();
  }
  cache.delete(file.path);
  cache.set(file.path, { key, index });
  if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return index;
}

async function read(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

interface Track {
  timescale: number;
  video: boolean;
}

async function indexMp4(handle: FileHandle, size: number): Promise<RecordingIndex> {
  const tracks = new Map<number, Track>();
  const fragments: FragmentEntry[] = [];
  let initSize = 0;
  let position = 0;
  let moof: Buffer | undefined;
  let moofAt = 0;
  while (position + 8 <= size) {
    const header = await read(handle, position, 16);
    if (header.length < 8) break;
    let boxSize = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    if (boxSize === 1 && header.length >= 16) boxSize = Number(header.readBigUInt64BE(8));
    if (boxSize < 8 || position + boxSize > size) break; // cut short: stop at the last complete box
    if (type === 'moov') {
      parseMoov(await read(handle, position, boxSize), tracks);
      initSize = position + boxSize;
    } else if (type === 'moof') {
      moof = await read(handle, position, boxSize);
      moofAt = position;
    } else if (type === 'mdat' && moof) {
      const fragment = parseMoof(moof, tracks);
      if (fragment) fragments.push({ offset: moofAt, size: position + boxSize - moofAt, ...fragment });
      moof = undefined;
    }
    position += boxSize;
  }
  const first = fragments[0];
  const last = fragments.at(-1);
  return { initSize, fragments, duration: first && last ? last.start + last.duration - first.start : 0 };
}

/** Children of a box's payload: [type, start, end] within `buffer`. */
function* children(buffer: Buffer, start: number, end: number): Generator<[string, number, number]> {
  let p = start;
  while (p + 8 <= end) {
    const size = buffer.readUInt32BE(p);
    if (size < 8 || p + size > end) return;
    yield [buffer.toString('latin1', p + 4, p + 8), p + 8, p + size];
    p += size;
  }
}

const find = (buffer: Buffer, start: number, end: number, type: string): [number, number] | undefined => {
  for (const [t, s, e] of children(buffer, start, end)) if (t === type) return [s, e];
  return undefined;
};

function parseMoov(moov: Buffer, tracks: Map<number, Track>): void {
  for (const [type, start, end] of children(moov, 8, moov.length)) {
    if (type !== 'trak') continue;
    const tkhd = find(moov, start, end, 'tkhd');
    const mdia = find(moov, start, end, 'mdia');
    if (!tkhd || !mdia) continue;
    const v1 = moov[tkhd[0]] === 1;
    const id = moov.readUInt32BE(tkhd[0] + (v1 ? 20 : 12));
    const mdhd = find(moov, mdia[0], mdia[1], 'mdhd');
    const hdlr = find(moov, mdia[0], mdia[1], 'hdlr');
    if (!mdhd || !hdlr) continue;
    const timescale = moov.readUInt32BE(mdhd[0] + (moov[mdhd[0]] === 1 ? 20 : 12));
    tracks.set(id, { timescale, video: moov.toString('latin1', hdlr[0] + 8, hdlr[0] + 12) === 'vide' });
  }
}

const NON_SYNC = 0x00010000;

/** The lead track's (video, else the first) start, duration and first-sample sync flag in one moof. */
function parseMoof(moof: Buffer, tracks: Map<number, Track>): Omit<FragmentEntry, 'offset' | 'size'> | undefined {
  let best: (Omit<FragmentEntry, 'offset' | 'size'> & { video: boolean }) | undefined;
  for (const [type, start, end] of children(moof, 8, moof.length)) {
    if (type !== 'traf') continue;
    const tfhd = find(moof, start, end, 'tfhd');
    const tfdt = find(moof, start, end, 'tfdt');
    const trun = find(moof, start, end, 'trun');
    if (!tfhd || !tfdt || !trun) continue;
    const track = tracks.get(moof.readUInt32BE(tfhd[0] + 4));
    if (!track) continue;
    const base = moof[tfdt[0]] === 1 ? Number(moof.readBigUInt64BE(tfdt[0] + 4)) : moof.readUInt32BE(tfdt[0] + 4);
    const flags = moof.readUInt32BE(trun[0]) & 0xffffff;
    const count = moof.readUInt32BE(trun[0] + 4);
    let p = trun[0] + 8;
    if (flags & 0x1) p += 4;
    let firstFlags = flags & 0x4 ? moof.readUInt32BE(p) : undefined;
    if (flags & 0x4) p += 4;
    let duration = 0;
    for (let i = 0; i < count && p <= trun[1]; i++) {
      if (flags & 0x100) {
        duration += moof.readUInt32BE(p);
        p += 4;
      }
      if (flags & 0x200) p += 4;
      if (flags & 0x400) {
        if (i === 0) firstFlags ??= moof.readUInt32BE(p);
        p += 4;
      }
      if (flags & 0x800) p += 4;
    }
    const entry = {
      start: base / track.timescale,
      duration: duration / track.timescale,
      independent: ((firstFlags ?? 0) & NON_SYNC) === 0,
      video: track.video,
    };
    if (!best || (entry.video && !best.video)) best = entry;
  }
  if (!best) return undefined;
  return { start: best.start, duration: best.duration, independent: best.independent };
}

/** FLV: first media timestamp (from the first 64 KiB) to the last tag's (found through the final PreviousTagSize). */
async function indexFlv(handle: FileHandle, size: number): Promise<RecordingIndex> {
  const head = await read(handle, 0, Math.min(size, 64 * 1024));
  let first: number | undefined;
  for (let p = 13; p + 11 <= head.length;) {
    const type = head[p]!;
    const bodySize = head.readUIntBE(p + 1, 3);
    if (type === 8 || type === 9) {
      first = timestampAt(head, p + 4);
      break;
    }
    p += 11 + bodySize + 4;
  }
  let last = first;
  if (size >= 17) {
    const tail = await read(handle, size - 4, 4);
    const previous = tail.readUInt32BE(0);
    if (previous >= 11 && previous <= size - 4) last = timestampAt(await read(handle, size - 4 - previous, 11), 4);
  }
  return { initSize: 0, fragments: [], duration: first !== undefined && last !== undefined ? Math.max(0, last - first) / 1000 : 0 };
}

const timestampAt = (b: Buffer, p: number): number => ((b[p + 3]! << 24) | (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!) >>> 0;
