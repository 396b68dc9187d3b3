// What a recording file holds, read from its structure rather than decoded:
// for fMP4 the init segment and every complete fragment (offset, size, start,
// duration, whether it starts on a keyframe), read box header by box header;
// for FLV the first and last media timestamps. A file cut short (a crash, a
// full disk) is indexed up to its last complete fragment. Indexes are cached
// by path, size and modification time, up to CACHE_FRAGMENTS fragments in
// all, and at most INDEXES_AT_ONCE files are read at once over all requests:
// any client that may list recordings asks for up to 1,000 indexes a page.
// Each request's files wait in a queue of their own, and the queues take
// turns a file at a time, so a small request is not held behind a large
// page; a request whose client has left drops its waiting files.
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

/**
 * Fragments the cached indexes hold in all (about 100 bytes each, 10 MiB):
 * 166 indexes of ten-minute files of 1 s fragments, or fewer longer ones.
 * An index larger than that is not cached.
 */
const CACHE_FRAGMENTS = 100_000;
/**
 * Files read at once. Each index is a chain of reads on libuv's four
 * threads, which the recorder's writes share: a page of 1,000 files of 600
 * fragments read all at once held 1,000 files open and took 51-72 s at a
 * load average of 12-15 (two at a time, with the read window: 5-8 s).
 */
const INDEXES_AT_ONCE = 2;

const cache = new Map<string, { key: string; index: RecordingIndex }>();
let cachedFragments = 0;
let reading = 0;

/** A file waiting for its turn to be read. */
interface Turn {
  start: () => void;
  drop: (reason: unknown) => void;
}
/** The queues of the requests with files waiting, in the order of their next turn. */
const queues: Turn[][] = [];

/** Indexes files for one request: `signal` aborts when its client leaves, and its files still waiting are dropped. */
export function indexerFor(signal?: AbortSignal): (file: RecordingFile) => Promise<RecordingIndex> {
  const waiting: Turn[] = [];
  signal?.addEventListener(
    'abort',
    () => {
      const at = queues.indexOf(waiting);
      if (at >= 0) queues.splice(at, 1);
      for (const turn of waiting.splice(0)) turn.drop(signal.reason);
    },
    { once: true },
  );
  const turn = (): Promise<void> =>
    new Promise((start, drop) => {
      if (waiting.push({ start, drop }) === 1) queues.push(waiting);
    });
  return async (file) => {
    signal?.throwIfAborted();
    const key = `${file.size}:${file.modified.getTime()}`;
    const cached = cache.get(file.path);
    if (cached?.key === key) return cached.index;
    if (reading < INDEXES_AT_ONCE) reading++;
    else await turn(); // a finished read hands its place on
    let index: RecordingIndex;
    try {
      index = await readIndex(file, signal);
    } finally {
      handOn();
    }
    remember(file.path, key, index);
    return index;
  };
}

/** Gives a finished read's place to the next request in turn (its oldest waiting file), so no other read slips in between. */
function handOn(): void {
  const queue = queues.shift();
  if (!queue) {
    reading--;
    return;
  }
  const next = queue.shift()!;
  if (queue.length > 0) queues.push(queue);
  next.start();
}

async function readIndex(file: RecordingFile, signal: AbortSignal | undefined): Promise<RecordingIndex> {
  const handle = await open(file.path, 'r');
  try {
    return file.format === 'fmp4' ? await indexMp4(handle, file.size, signal) : await indexFlv(handle, file.size);
  } finally {
    await handle.close();
  }
}

/** Caches `index`, dropping the least recently indexed while the cache holds more than CACHE_FRAGMENTS. */
function remember(path: string, key: string, index: RecordingIndex): void {
  forget(path);
  if (index.fragments.length > CACHE_FRAGMENTS) return;
  cache.set(path, { key, index });
  cachedFragments += index.fragments.length;
  while (cachedFragments > CACHE_FRAGMENTS) forget(cache.keys().next().value!);
}

function forget(path: string): void {
  const cached = cache.get(path);
  if (!cached) return;
  cache.delete(path);
  cachedFragments -= cached.index.fragments.length;
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

/** Reads box by box; stops when `signal` aborts (a file of a day's fragments is a long read). */
async function indexMp4(handle: FileHandle, size: number, signal: AbortSignal | undefined): Promise<RecordingIndex> {
  const file = new ReadWindow(handle);
  const tracks = new Map<number, Track>();
  const fragments: FragmentEntry[] = [];
  let initSize = 0;
  let position = 0;
  /** The last moof, parsed, until its mdat. */
  let moof: { at: number; fragment: ReturnType<typeof parseMoof> } | undefined;
  while (position + 8 <= size) {
    signal?.throwIfAborted();
    // Awaited only when the window must move: a box header is most often in the bytes already read.
    if (!file.holds(position, 16)) await file.load(position, 16);
    const { buffer } = file;
    const at = file.offsetOf(position);
    const available = file.available(position);
    if (available < 8) break;
    let boxSize = buffer.readUInt32BE(at);
    const type = buffer.readUInt32BE(at + 4);
    if (boxSize === 1 && available >= 16) boxSize = Number(buffer.readBigUInt64BE(at + 8));
    if (boxSize < 8 || position + boxSize > size) break; // cut short: stop at the last complete box
    if (type === MOOV || type === MOOF) {
      if (!file.holds(position, boxSize)) await file.load(position, boxSize);
      if (!file.holds(position, boxSize)) break; // the file shrank under the read
      const box = file.offsetOf(position);
      if (type === MOOV) {
        parseMoov(file.buffer, box, box + boxSize, tracks);
        initSize = position + boxSize;
      } else moof = { at: position, fragment: parseMoof(file.buffer, box, box + boxSize, tracks) };
    } else if (type === MDAT && moof) {
      if (moof.fragment) fragments.push({ offset: moof.at, size: position + boxSize - moof.at, ...moof.fragment });
      moof = undefined;
    }
    position += boxSize;
  }
  const first = fragments[0];
  const last = fragments.at(-1);
  return { initSize, fragments, duration: first && last ? last.start + last.duration - first.start : 0 };
}

/** Bytes a read brings: a fragment's moof and its mdat's header (a few KiB) come in one. */
const WINDOW_BYTES = 16 * 1024;

/**
 * A file read through a window of at least WINDOW_BYTES, which the parser
 * reads in place (`buffer` at `offsetOf`): no promise and no Buffer view per
 * box, only a read when the window moves.
 */
class ReadWindow {
  private readonly handle: FileHandle;
  private window = Buffer.allocUnsafe(WINDOW_BYTES);
  /** The file positions the window holds: [start, end). */
  private start = 0;
  private end = 0;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  /** Whether the window holds `length` bytes at `position`. */
  holds(position: number, length: number): boolean {
    return position >= this.start && position + length <= this.end;
  }

  /** Moves the window to `position`, at least `length` bytes long (fewer at the end of the file); a box larger than the window gets a larger one. */
  async load(position: number, length: number): Promise<void> {
    if (length > this.window.length) this.window = Buffer.allocUnsafe(length);
    // WINDOW_BYTES again after a large box: the reads that follow stay small.
    const { bytesRead } = await this.handle.read(this.window, 0, Math.max(length, WINDOW_BYTES), position);
    this.start = position;
    this.end = position + bytesRead;
  }

  /** The bytes read, to be read at `offsetOf` a file position. */
  get buffer(): Buffer {
    return this.window;
  }

  /** Where file position `position` lies in `buffer`. */
  offsetOf(position: number): number {
    return position - this.start;
  }

  /** How many bytes from `position` the window holds. */
  available(position: number): number {
    return this.end - position;
  }
}

/** A box type as the number its four characters make: an index of a day of fragments compares millions. */
const fourcc = (type: string): number => Buffer.from(type, 'latin1').readUInt32BE(0);
const [MOOV, MOOF, MDAT, TRAK, TKHD, MDIA, MDHD, HDLR, TRAF, TFHD, TFDT, TRUN, VIDE] = [
  'moov',
  'moof',
  'mdat',
  'trak',
  'tkhd',
  'mdia',
  'mdhd',
  'hdlr',
  'traf',
  'tfhd',
  'tfdt',
  'trun',
  'vide',
].map(fourcc) as [number, number, number, number, number, number, number, number, number, number, number, number, number];

/**
 * Where the payload of the first box of `type` at or after `from` in
 * `buffer` (up to `end`) starts, or -1 (a box cut short ends the search);
 * boxEnd finds its end. Offsets rather than strings and tuples: a page of
 * 1,000 ten-minute files walks about ten million boxes, and a tuple and a
 * string each made 2 GiB of garbage.
 */
function child(buffer: Buffer, from: number, end: number, type: number): number {
  for (let p = from; p + 8 <= end;) {
    const size = buffer.readUInt32BE(p);
    if (size < 8 || p + size > end) return -1;
    if (buffer.readUInt32BE(p + 4) === type) return p + 8;
    p += size;
  }
  return -1;
}

/** The end of the box whose payload starts at `payload`. */
const boxEnd = (buffer: Buffer, payload: number): number => payload - 8 + buffer.readUInt32BE(payload - 8);

/** The tracks of the moov box at `from` (to `end`) in `moov`. */
function parseMoov(moov: Buffer, from: number, end: number, tracks: Map<number, Track>): void {
  for (let trak = child(moov, from + 8, end, TRAK); trak >= 0; trak = child(moov, boxEnd(moov, trak), end, TRAK)) {
    const trakEnd = boxEnd(moov, trak);
    const tkhd = child(moov, trak, trakEnd, TKHD);
    const mdia = child(moov, trak, trakEnd, MDIA);
    if (tkhd < 0 || mdia < 0) continue;
    const id = moov.readUInt32BE(tkhd + (moov[tkhd] === 1 ? 20 : 12));
    const mdiaEnd = boxEnd(moov, mdia);
    const mdhd = child(moov, mdia, mdiaEnd, MDHD);
    const hdlr = child(moov, mdia, mdiaEnd, HDLR);
    if (mdhd < 0 || hdlr < 0) continue;
    const timescale = moov.readUInt32BE(mdhd + (moov[mdhd] === 1 ? 20 : 12));
    tracks.set(id, { timescale, video: moov.readUInt32BE(hdlr + 8) === VIDE });
  }
}

const NON_SYNC = 0x00010000;

/** The lead track's (video, else the first) start, duration and first-sample sync flag in the moof box at `from` (to `end`) in `moof`. */
function parseMoof(
  moof: Buffer,
  from: number,
  end: number,
  tracks: Map<number, Track>,
): Omit<FragmentEntry, 'offset' | 'size'> | undefined {
  let best: (Omit<FragmentEntry, 'offset' | 'size'> & { video: boolean }) | undefined;
  for (let traf = child(moof, from + 8, end, TRAF); traf >= 0; traf = child(moof, boxEnd(moof, traf), end, TRAF)) {
    const trafEnd = boxEnd(moof, traf);
    const tfhd = child(moof, traf, trafEnd, TFHD);
    const tfdt = child(moof, traf, trafEnd, TFDT);
    const trun = child(moof, traf, trafEnd, TRUN);
    if (tfhd < 0 || tfdt < 0 || trun < 0) continue;
    const track = tracks.get(moof.readUInt32BE(tfhd + 4));
    if (!track) continue;
    const base = moof[tfdt] === 1 ? Number(moof.readBigUInt64BE(tfdt + 4)) : moof.readUInt32BE(tfdt + 4);
    const flags = moof.readUInt32BE(trun) & 0xffffff;
    const count = moof.readUInt32BE(trun + 4);
    const trunEnd = boxEnd(moof, trun);
    let p = trun + 8;
    if (flags & 0x1) p += 4;
    let firstFlags = flags & 0x4 ? moof.readUInt32BE(p) : undefined;
    if (flags & 0x4) p += 4;
    let duration = 0;
    for (let i = 0; i < count && p <= trunEnd; i++) {
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
  // `| 0`: the 32-bit tag timestamps may wrap within a file.
  return { initSize: 0, fragments: [], duration: first !== undefined && last !== undefined ? Math.max(0, (last - first) | 0) / 1000 : 0 };
}

const timestampAt = (b: Buffer, p: number): number => ((b[p + 3]! << 24) | (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!) >>> 0;
