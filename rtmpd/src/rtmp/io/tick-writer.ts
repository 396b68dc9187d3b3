import type { Socket } from 'node:net';
import { BufferPool } from '../../memory/buffer-pool.ts';
import { FLV_TAG_OVERHEAD, writeFlvTag } from '../../flv/mux.ts';
import { chunkedLength, writeChunks } from '../wire/chunk-writer.ts';
import { HandleWriter, type QueuedWriteOwner } from './handle-write.ts';
import { MergeWheel, type MergingWriter } from './merge-wheel.ts';

/**
 * Batches and shared messages are pooled buffers of power-of-two sizes from
 * this one: an encoder's packet read at a time is an audio or a video frame,
 * so most ticks carry one or two messages of a stream.
 */
const MIN_BATCH_BYTES = 4 * 1024;
/** Larger batches (a big GOP for a joining player) are not kept for reuse. */
const MAX_SPARE_BATCH_BYTES = 1024 * 1024;
/**
 * Spare buffers kept, up to 8 MiB: in a fan-out tick every player whose
 * tick holds more than one message takes a batch (a thousand players, two
 * frames each: a thousand 8 KiB batches). A buffer that a socket still holds
 * (its write had to wait) is not reused: it goes with the socket's queue.
 */
const MAX_SPARE_BYTES = 8 * 1024 * 1024;
/**
 * Media a writer merges over its write interval leaves at once when it
 * reaches this much: a keyframe or a burst gains nothing by waiting.
 */
const MAX_MERGED_BYTES = 64 * 1024;
/** The tick's runs double while a tick fills them, up to this size. */
const MAX_RUN_BYTES = 256 * 1024;
/**
 * A merging stream's run (SharedSource): its players' waiting ranges run on
 * in it until it is full, when each copies its range once. 64 KiB are about
 * 0.9 s of a 0.57 Mbps stream and 0.25 s at 2.1 Mbps, many 40 ms intervals,
 * and one per merging stream while its players wait.
 */
const SOURCE_RUN_BYTES = 64 * 1024;
/** How many of the last shared packets' writers are counted: more than a tick serializes. */
const TAKER_RING = 1024;
/**
 * The forms a packet is serialized in per tick that are kept for the next
 * writers: one per framing (a stream's RTMP players' chunks, its HTTP-FLV
 * players' tags, an HTTP/1.0 player's bare tags) and a spare. A writer that
 * asks for yet another form has it serialized again each time.
 */
const MAX_FORMS = 4;

/**
 * How a shared message is framed on the wire: an RTMP chunk size (> 0), or
 * one of FLV_FRAMING for HTTP-FLV players, whose messages are FLV tags
 * (`typeId` the tag type): the tag alone (a body that the connection's end
 * delimits, HTTP/1.0), or the tag as one HTTP/1.1 chunk, so that a merged
 * range is whole chunks. A number, so that the fan-out's hot path compares it
 * as it compared the chunk size.
 */
export type Framing = number;

export const FLV_FRAMING = { tag: 0, httpChunk: -1 } as const;

/** The bytes a message takes on the wire in this framing. */
function framedLength(csid: number, timestamp: number, bodyLength: number, framing: Framing): number {
  if (framing > 0) return chunkedLength(csid, timestamp, bodyLength, framing);
  const tag = FLV_TAG_OVERHEAD + bodyLength;
  return framing === FLV_FRAMING.tag ? tag : tag.toString(16).length + tag + 4;
}

/** Writes a message in this framing at `pos` of `out`; returns where it ends. */
function writeFramed(
  out: Buffer,
  pos: number,
  csid: number,
  typeId: number,
  streamId: number,
  timestamp: number,
  body: Buffer,
  framing: Framing,
): number {
  if (framing > 0) return writeChunks(out, pos, csid, typeId, streamId, timestamp, body, framing);
  if (framing === FLV_FRAMING.tag) return writeFlvTag(out, pos, typeId, timestamp, body);
  const end = pos + out.write(`${(FLV_TAG_OVERHEAD + body.length).toString(16)}\r\n`, pos, 'latin1');
  const tagEnd = writeFlvTag(out, end, typeId, timestamp, body);
  return tagEnd + out.write('\r\n', tagEnd, 'latin1');
}

/** How many SharedRun objects whose last reference went are kept for the next runs. */
const MAX_SPARE_RUNS = 64;
/** What a spare SharedRun holds instead of a buffer, so that it keeps none alive. */
const NO_BUFFER = Buffer.alloc(0);

/**
 * Where a tick's shared messages are serialized, one after another while
 * they fit: a connection that sends several of them in a row (a stream's
 * video frame and its audio) sends one range of this buffer, uncopied.
 * Counted references keep it: the tick's while it serializes into it, and
 * each writer's whose pending bytes are a range of it (a merging writer's
 * until its deadline). The last one gone, the buffer goes back to the pool
 * unless a socket still holds it (a write that had to wait), and the object
 * waits for the next run: a run is stored in the tick and in every writer
 * that sends it, long-lived objects, and a new object per run made each of
 * those stores a young object into an old one, which V8's write barrier
 * records in its remembered set (1-2% of rtmpd's samples at 100 x 3).
 */
class SharedRun {
  buffer: Buffer = NO_BUFFER;
  used = 0;
  /** The tick (while this is one of its runs) and the writers whose pending bytes lie in it. */
  refs = 0;
  /** A socket queued bytes of it instead of writing them at once, so the buffer is not reused. */
  kept = false;
  /** Counts the runs this object has held, so that a source can tell its run from a later one in the same object. */
  generation = 0;
  /** A source's run that the tick holds a reference to until its end, since it serialized into it. */
  heldByTick = false;
  /** The range last handed out, which the next writer of the same range (a stream's next player) gets too. */
  private view: Buffer | undefined = undefined;
  private viewStart = 0;

  /** Starts a run in `buffer`, with the tick's reference. */
  start(buffer: Buffer): void {
    this.buffer = buffer;
    this.used = 0;
    this.refs = 1;
    this.kept = false;
    this.generation++;
  }

  /** The last reference went: lets go of the buffer (the pool or a socket has it now). */
  end(): void {
    this.buffer = NO_BUFFER;
    this.view = undefined;
  }

  /** [start, end) of the buffer, one Buffer object for all the writers that send that range in this tick. */
  range(start: number, end: number): Buffer {
    const view = this.view;
    if (view !== undefined && this.viewStart === start && view.length === end - start) return view;
    this.viewStart = start;
    this.view = this.buffer.subarray(start, end);
    return this.view;
  }
}

/**
 * Where the shared messages of one source (a stream) in one framing are
 * serialized while its writers merge: a run of its own, so each player's
 * next message follows on from its waiting range, where in a run shared by
 * several merging streams, or by the stream's RTMP and HTTP-FLV players, it
 * would follow another message and be copied into a batch per player. It
 * holds no reference: the run lives while the writers waiting with ranges of
 * it (and the tick that serializes into it) do, and once its buffer has gone
 * back to the pool the next message starts a new one.
 */
export class SharedSource {
  readonly framing: Framing;
  run: SharedRun | undefined = undefined;
  /** The last burst its writers were sent (writeSharedBurst) and its run, which this source holds a reference to until the burst is replaced. */
  burstKey: BurstKey | undefined = undefined;
  burst: SharedRun | undefined = undefined;
  /** The run's generation when this source started it: another means the object holds another run now. */
  generation = 0;
  /** The tick sequence number of its last shared packet, whose writers say whether it merges. */
  lastSeq = 0;

  constructor(framing: Framing) {
    this.framing = framing;
  }
}

/** What a burst of messages (TickWriter.writeSharedBurst) is known by: the same object for every writer that sends it. */
export interface BurstKey {
  /** Outdated: no writer will be sent it again, so its bytes may go once the writers that were have sent them. */
  readonly replaced: boolean;
}

/** A message of a burst, as writeShared takes one. */
export interface BurstMessage {
  csid: number;
  typeId: number;
  streamId: number;
  timestamp: number;
  body: Buffer;
}

/**
 * A media message as it goes on the wire, serialized once for every connection that
 * sends it with the same chunk stream, stream id and framing: a stream's
 * fan-out writes the same packet to player after player. It lies at
 * [start, end) of its run. Only the last packet's forms are asked for
 * again, so the tick keeps a few and refills them per packet.
 */
export class SharedMessage {
  csid = 0;
  streamId = 0;
  framing: Framing = 0;
  run: SharedRun | undefined = undefined;
  start = 0;
  end = 0;
  /** Its packet's place in the tick's count of writers per packet. */
  seq = 0;

  /** The message on the wire: a view of its run. */
  get bytes(): Buffer {
    return this.run!.range(this.start, this.end);
  }
}

/**
 * The tick that the writers of many connections share: which writers have
 * bytes waiting, whether a flush is due, the spare batches and this tick's
 * shared messages. One per rtmpd (its RTMP sessions and HTTP-FLV players
 * alike) or client process, handed to every TickWriter it makes.
 */
export class WriteTick {
  /** Writes a flush to the socket's handle when nothing is queued before it. */
  readonly handles = new HandleWriter();
  /**
   * How long shared media (a stream's fan-out to players) may wait for more
   * before a writer sends it, in ms; 0 sends it at the end of every tick.
   * Fewer, larger writes cost less CPU per byte (a system call and a TCP
   * segment each) for up to this much more latency.
   */
  readonly mediaWriteIntervalMs: number;
  /** Shared media merges only when at least this many writers send it (a stream's players). */
  readonly mergeMinWriters: number;
  /**
   * How many writers took each recent shared packet, at its sequence number
   * modulo the ring, whatever its framing: whether a stream's players merge
   * counts all of them, RTMP and HTTP-FLV.
   */
  private readonly takers = new Uint32Array(TAKER_RING);
  private seq = 0;
  private readonly batches = new BufferPool(MAX_SPARE_BYTES);
  /**
   * Writers with bytes in this tick's batch, the first `dirtyCount` of them;
   * flushed together at the end of the tick. Counted rather than emptied with
   * `length = 0`, which calls into V8's runtime and drops the array's storage
   * for the next tick's push to allocate again, once per socket read.
   */
  private readonly dirty: (TickWriter | undefined)[] = [];
  private dirtyCount = 0;
  /**
   * The run this tick's shared messages are serialized into, still filling.
   * While writers merge it is kept for the next ticks, so what a stream's
   * players are sent next follows on in it and each player's wait stays one
   * uncopied range. A field, not the last of an array of runs: between ticks
   * that array is empty, and its last, index -1, is a named property that V8
   * looks up in its runtime, once per socket read.
   */
  private filling: SharedRun | undefined = undefined;
  /** Runs this tick filled before `filling` (a read that brought more than one run holds: rare). */
  private readonly filled: SharedRun[] = [];
  /** Run objects whose last reference went, for the next runs. */
  private readonly spareRuns: SharedRun[] = [];
  /** The last shared packet (`seq`), whose forms are first in line for the next player; undefined between ticks. */
  private packet: object | undefined = undefined;
  /** The packet's forms serialized so far, the first `formCount`; reused for the next packet. */
  private readonly forms = Array.from({ length: MAX_FORMS }, () => new SharedMessage());
  private formCount = 0;
  /** Sources that hold a burst's run, let go of once the burst is replaced. */
  private readonly bursts: SharedSource[] = [];
  /** Each source's (a stream's) run state per framing, made at its first player in that framing. */
  private readonly sources = new WeakMap<object, SharedSource[]>();
  /** Writers merging media, each until its own deadline; undefined without a write interval. */
  private readonly merges: MergeWheel | undefined;
  private flushScheduled = false;
  /** A socket read is being handled: its end flushes, so no flush is scheduled. */
  private inRead = false;
  private readonly flushDirty = (): void => {
    this.flushScheduled = false;
    const merges = this.merges;
    const now = merges === undefined ? 0 : performance.now();
    // Under load reads follow one another closely, and a timer would wait for
    // a whole turn of the event loop (tens of ms): due writers go here.
    merges?.run(now);
    // Up to the count as it is now: a flush does not add writers, but a late write would land at the end.
    for (let i = 0; i < this.dirtyCount; i++) {
      const writer = this.dirty[i]!;
      this.dirty[i] = undefined;
      const deadline = writer.endTick(now);
      if (deadline > 0 && !merges!.add(writer, deadline, now)) writer.flushMerged(now);
    }
    this.dirtyCount = 0;
    this.forgetPacket();
    this.dropRuns(merges !== undefined && merges.waiting > 0);
    this.dropReplacedBursts();
  };

  constructor(mediaWriteIntervalMs = 0, mergeMinWriters = 1) {
    this.mediaWriteIntervalMs = mediaWriteIntervalMs;
    this.mergeMinWriters = mergeMinWriters;
    this.merges =
      mediaWriteIntervalMs > 0 ? new MergeWheel(mediaWriteIntervalMs, () => this.dropRuns(this.merges!.waiting > 0)) : undefined;
  }

  /**
   * Handles one socket read and then sends what it wrote. Most writes happen
   * while a publisher's read is handled (the fan-out of its packets), so one
   * flush at its end serves them all.
   */
  handleRead(connection: { receive(bytes: Buffer): void }, bytes: Buffer): void {
    this.inRead = true;
    try {
      connection.receive(bytes);
    } finally {
      this.inRead = false;
      this.flushDirty();
    }
  }

  /** Lets go of the tick's runs, but the one still filling when `keepLast` (writers merge). */
  private dropRuns(keepLast: boolean): void {
    const filled = this.filled;
    if (filled.length > 0) {
      for (const run of filled) {
        run.heldByTick = false;
        this.unref(run);
      }
      filled.length = 0;
    }
    if (keepLast || this.filling === undefined) return;
    this.unref(this.filling);
    this.filling = undefined;
  }

  /** One reference to `run` is gone; the last one returns its buffer to the pool unless a socket holds it. */
  unref(run: SharedRun): void {
    if (--run.refs > 0) return;
    if (!run.kept) this.release(run.buffer);
    run.end();
    if (this.spareRuns.length < MAX_SPARE_RUNS) this.spareRuns.push(run);
  }

  /** The run state of `source` (a stream) in `framing`, the same for all its writers that frame its messages so. */
  sourceOf(source: object, framing: Framing): SharedSource {
    let states = this.sources.get(source);
    if (states === undefined) {
      states = [];
      this.sources.set(source, states);
    }
    let state = states.find((s) => s.framing === framing);
    if (state === undefined) {
      state = new SharedSource(framing);
      states.push(state);
    }
    return state;
  }

  /** How many writers this tick sent the shared packet numbered `seq`. */
  takersOf(seq: number): number {
    return this.takers[seq % TAKER_RING]!;
  }

  /** `writer` flushed before its deadline. */
  cancelMerge(writer: TickWriter): void {
    this.merges!.cancel(writer);
  }

  takeBatch(atLeast: number): Buffer {
    let size = MIN_BATCH_BYTES;
    while (size < atLeast) size *= 2;
    return this.batches.take(size);
  }

  release(batch: Buffer): void {
    if (batch.length <= MAX_SPARE_BATCH_BYTES) this.batches.give(batch);
  }

  /**
   * The message serialized for `key` (the packet) with these framing
   * parameters, made at its first request this tick: in `source`'s run while
   * its last packet went to enough writers to merge, else in the tick's. A
   * stream's fan-out asks for its packet player after player, in the order
   * they joined, so its RTMP and HTTP-FLV players' forms take turns.
   */
  sharedMessage(
    key: object,
    source: SharedSource,
    csid: number,
    typeId: number,
    streamId: number,
    timestamp: number,
    body: Buffer,
    framing: Framing,
  ): SharedMessage {
    if (key !== this.packet) {
      this.packet = key;
      this.formCount = 0;
      this.takers[++this.seq % TAKER_RING] = 0;
    }
    this.takers[this.seq % TAKER_RING]!++;
    const forms = this.forms;
    for (let i = 0; i < this.formCount; i++) {
      const form = forms[i]!;
      if (form.csid === csid && form.streamId === streamId && form.framing === framing) return form;
    }
    const length = framedLength(csid, timestamp, body.length, framing);
    const run = this.merging(source) ? this.sourceRun(source, length) : this.fillingRun(length);
    const start = run.used;
    run.used = writeFramed(run.buffer, start, csid, typeId, streamId, timestamp, body, framing);
    // Past the last kept form, the newest takes its place.
    const form = forms[this.formCount < MAX_FORMS ? this.formCount++ : MAX_FORMS - 1]!;
    form.csid = csid;
    form.streamId = streamId;
    form.framing = framing;
    form.run = run;
    form.start = start;
    form.end = run.used;
    form.seq = this.seq;
    source.lastSeq = this.seq;
    return form;
  }

  /**
   * The run that holds the burst `key` serialized in `source`'s framing,
   * made at its first writer and shared by the others: a join storm's
   * players are each sent the same GOP, and serialized per player it was
   * copied per player. The source holds it until the burst is replaced.
   */
  sharedBurst(key: BurstKey, source: SharedSource, messages: () => readonly BurstMessage[]): SharedRun {
    if (source.burstKey === key) return source.burst!;
    const list = messages();
    const { framing } = source;
    let length = 0;
    for (const m of list) length += framedLength(m.csid, m.timestamp, m.body.length, framing);
    const run = this.startRun(length);
    for (const m of list) run.used = writeFramed(run.buffer, run.used, m.csid, m.typeId, m.streamId, m.timestamp, m.body, framing);
    if (source.burst === undefined) this.bursts.push(source);
    else this.unref(source.burst);
    source.burstKey = key;
    source.burst = run;
    return run;
  }

  /** Lets go of the runs of bursts that were replaced (writers sending them hold references of their own). */
  private dropReplacedBursts(): void {
    const bursts = this.bursts;
    for (let i = bursts.length - 1; i >= 0; i--) {
      const source = bursts[i]!;
      if (!source.burstKey!.replaced) continue;
      this.unref(source.burst!);
      source.burst = undefined;
      source.burstKey = undefined;
      bursts.splice(i, 1);
    }
  }

  /** The tick has ended: the next packet starts afresh, and no form refers to a run. */
  private forgetPacket(): void {
    this.packet = undefined;
    for (let i = 0; i < this.formCount; i++) this.forms[i]!.run = undefined;
    this.formCount = 0;
  }

  /** Whether `source`'s writers merge: its last packet (if the ring still counts it) went to enough of its stream's writers. */
  private merging(source: SharedSource): boolean {
    return (
      this.merges !== undefined &&
      this.seq - source.lastSeq < TAKER_RING &&
      this.takers[source.lastSeq % TAKER_RING]! >= this.mergeMinWriters
    );
  }

  /**
   * The tick's run with room for `length` bytes. Room for what usually
   * follows a frame in the same read (its audio), and twice the last run's
   * when a read brings more (a publisher that catches up), so a writer's
   * messages rarely straddle two runs.
   */
  private fillingRun(length: number): SharedRun {
    let run = this.filling;
    if (run === undefined || run.used + length > run.buffer.length) {
      const grown = Math.min(2 * (run?.buffer.length ?? 0), MAX_RUN_BYTES);
      if (run !== undefined) this.filled.push(run);
      run = this.startRun(Math.max(2 * length, grown));
      this.filling = run;
    }
    return run;
  }

  /**
   * `source`'s run with room for `length` bytes, held by the tick until its
   * end. A new one when the last is full or its buffer has gone back to the
   * pool (no writer waited with a range of it any more).
   */
  private sourceRun(source: SharedSource, length: number): SharedRun {
    const run = source.run;
    if (run !== undefined && run.generation === source.generation && run.refs > 0 && run.used + length <= run.buffer.length) {
      if (!run.heldByTick) {
        run.heldByTick = true;
        run.refs++;
        this.filled.push(run);
      }
      return run;
    }
    const started = this.startRun(Math.max(2 * length, SOURCE_RUN_BYTES));
    started.heldByTick = true;
    this.filled.push(started);
    source.run = started;
    source.generation = started.generation;
    return started;
  }

  /** A run in a pooled buffer of at least `size` bytes, with the tick's reference. */
  private startRun(size: number): SharedRun {
    const run = this.spareRuns.pop() ?? new SharedRun();
    run.start(this.takeBatch(size));
    return run;
  }

  /** `writer` has bytes to send: it is flushed at the end of this read or tick. */
  markDirty(writer: TickWriter): void {
    this.dirty[this.dirtyCount++] = writer;
    if (!this.inRead && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushDirty);
    }
  }
}

/**
 * Writes to a socket so that everything written in one tick (the packets of
 * one publisher read, a joining player's GOP, a publisher's frame and its
 * audio) leaves in a single write. Each write is copied into the tick's
 * batch at once, RTMP messages as their chunk headers and body, so the bytes
 * may be views of a buffer that is reused right after the call. The copy is
 * a memcpy of bytes the kernel copies anyway; a write per part, or corking
 * and a writev, costs more in Node's stream machinery. The flush goes to the
 * socket's handle itself while nothing is queued (handle-write.ts), and
 * through socket.write behind whatever is. With a media write interval, a
 * tick that wrote only shared media within the interval of the last flush
 * keeps it until that interval has passed (its deadline, in the tick's merge
 * wheel), as SRS's merged writes do.
 */
export class TickWriter implements QueuedWriteOwner, MergingWriter {
  private readonly socket: Socket;
  private readonly tick: WriteTick;
  private batch: Buffer | undefined = undefined;
  private used = 0;
  /**
   * This tick's writes so far are shared messages that lie one after another
   * in one run: [loneStart, loneEnd) of `lone` leaves as it is, uncopied.
   */
  private lone: SharedRun | undefined = undefined;
  private loneStart = 0;
  private loneEnd = 0;
  /** A flush written to the handle was left queued in libuv (its bytes), so later ones go through the socket's queue. */
  private queuedInHandle = 0;
  /**
   * Bytes went through the socket's Writable (`queue`) and it may still hold
   * some. Only this writer writes to the socket, so while this is false the
   * Writable holds nothing and its length is not asked: the hub asks
   * `pendingBytes` for every packet and player, and the Writable's state is
   * two more objects to load per player.
   */
  private inWritable = false;
  /** `full` said so: the socket emits 'drain' once what was queued is written, as after a write() that returned false. */
  private needDrain = false;
  private ended = false;
  /** In the tick's list of writers to flush at the end of the tick. */
  private dirty = false;
  /** Something besides shared media (a reply, a control message) is queued: it leaves at the end of the tick. */
  private urgent = false;
  /** The slot of the tick's merge wheel it waits in, or -1. */
  mergeSlot = -1;
  /** performance.now() of the last flush that ended a tick or an interval. */
  private flushedAt = -Infinity;
  /** The last shared packet written (its tick sequence number), whose writers say whether this one merges. */
  private sharedSeq = 0;

  constructor(socket: Socket, tick: WriteTick) {
    this.socket = socket;
    this.tick = tick;
    // Another writer may have written first (an HTTP response's head), and its bytes may wait in the Writable.
    this.inWritable = socket.writableLength > 0;
  }

  /** Bytes written but not yet taken by the kernel: this tick's (or merge interval's) and those held elsewhere. */
  get pendingBytes(): number {
    return this.queuedInTick + this.heldElsewhere;
  }

  /** Bytes of earlier flushes the kernel has not taken: what the peer leaves unread, this tick's writes aside. */
  get backlogBytes(): number {
    return this.heldElsewhere;
  }

  /** Bytes queued since the last flush. */
  private get queuedInTick(): number {
    return this.lone === undefined ? this.used : this.loneEnd - this.loneStart;
  }

  /** Bytes of earlier flushes that libuv (a handle write left queued) or the socket's Writable still holds. */
  private get heldElsewhere(): number {
    return this.queuedInHandle + (this.inWritable ? this.heldInWritable() : 0);
  }

  /** What the socket's Writable still holds of what `queue` gave it; once nothing, it is not asked again until the next `queue`. */
  private heldInWritable(): number {
    const length = this.socket.writableLength;
    if (length === 0) this.inWritable = false;
    return length;
  }

  /** The socket's buffer is full: the caller should hold back until it drains ('drain' on the socket). */
  get full(): boolean {
    const full = this.pendingBytes >= this.socket.writableHighWaterMark;
    if (full) this.needDrain = true;
    return full;
  }

  /** A flush that libuv held is written (or failed, and the socket is destroyed). */
  queuedWriteDone(error: Error | undefined): void {
    this.queuedInHandle = 0;
    if (error !== undefined) this.socket.destroy(error);
    else this.drained();
  }

  /** Emits 'drain' once nothing is queued any more, if `full` said the socket was. */
  private readonly drained = (): void => {
    if (!this.needDrain || this.heldElsewhere > 0) return;
    this.needDrain = false;
    this.socket.emit('drain');
  };

  /** The run state of `source` (a stream) in this writer's tick, for messages framed as `framing`. */
  sourceOf(source: object, framing: Framing): SharedSource {
    return this.tick.sourceOf(source, framing);
  }

  /** Queues bytes for this tick's write; returns how many (0 after end()). */
  write(bytes: Buffer): number {
    const pos = this.reserve(bytes.length, true);
    if (pos < 0) return 0;
    this.batch!.set(bytes, pos);
    return bytes.length;
  }

  /** Queues one RTMP message as its chunks; returns the bytes it takes on the wire (0 after end()). */
  writeMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer, chunkSize: number): number {
    const length = chunkedLength(csid, timestamp, body.length, chunkSize);
    const pos = this.reserve(length, true);
    if (pos < 0) return 0;
    writeChunks(this.batch!, pos, csid, typeId, streamId, timestamp, body, chunkSize);
    return length;
  }

  /**
   * Queues a media message that other connections send too (a stream's
   * fan-out, `key` being the packet, `source` the stream's run state from
   * `sourceOf`): serialized once per tick, and sent without a copy when it is
   * all this writer sends in the tick, framed as `framing` says. Returns the bytes it takes on the wire (0 after end()).
   */
  writeShared(
    key: object,
    source: SharedSource,
    csid: number,
    typeId: number,
    streamId: number,
    timestamp: number,
    body: Buffer,
    framing: Framing,
  ): number {
    if (this.ended) return 0;
    const message = this.tick.sharedMessage(key, source, csid, typeId, streamId, timestamp, body, framing);
    this.sharedSeq = message.seq;
    return this.queueShared(message.run!, message.start, message.end);
  }

  /**
   * Queues a burst of media messages that other connections are sent too (a
   * joining player's GOP, `key` the same object for all of them): serialized
   * once, in `source`'s framing, by `messages` at the first writer, and sent
   * without a copy when it is all this writer sends in the tick. It leaves at
   * the end of the tick, as a reply does: it is what the player waits for.
   * Returns the bytes it takes on the wire (0 after end()).
   */
  writeSharedBurst(key: BurstKey, source: SharedSource, messages: () => readonly BurstMessage[]): number {
    if (this.ended) return 0;
    const run = this.tick.sharedBurst(key, source, messages);
    const length = this.queueShared(run, 0, run.used);
    this.urgent = true;
    this.markDirty();
    return length;
  }

  /** Queues [start, end) of a shared run: its range as it is while this tick sends nothing else, else copied into the batch. */
  private queueShared(run: SharedRun, start: number, end: number): number {
    const length = end - start;
    if (this.lone === run && this.loneEnd === start) {
      this.loneEnd = end;
      // A merging writer is flushed at its deadline unless this makes it due now.
      if (this.loneEnd - this.loneStart >= MAX_MERGED_BYTES) this.markDirty();
      return length;
    }
    if (this.batch !== undefined || this.lone !== undefined) {
      const pos = this.reserve(length, false);
      if (pos >= 0) this.batch!.set(run.range(start, end), pos);
      return length;
    }
    this.lone = run;
    run.refs++;
    this.loneStart = start;
    this.loneEnd = end;
    this.markDirty();
    return length;
  }

  /**
   * The end of a tick that wrote to this writer: sends what it queued and
   * returns 0, or, when that is shared media only and the write interval
   * since its last flush has not passed, keeps it and returns its deadline
   * (the tick's wheel flushes it then). Kept shared messages stay where they
   * were serialized (the writer holds a reference to their run), so the next
   * ones a stream's players are sent follow on in the same run, uncopied.
   */
  endTick(now: number): number {
    this.dirty = false;
    if (this.queuedInTick === 0) return 0;
    const tick = this.tick;
    const interval = tick.mediaWriteIntervalMs;
    const deadline = this.flushedAt + interval;
    if (
      interval === 0 ||
      this.urgent ||
      deadline <= now ||
      this.queuedInTick >= MAX_MERGED_BYTES ||
      tick.takersOf(this.sharedSeq) < tick.mergeMinWriters ||
      !this.socket.writable
    ) {
      this.flushMerged(now);
      return 0;
    }
    return deadline;
  }

  /** Sends what was kept (its deadline has come), and the next interval starts. */
  flushMerged(now: number): void {
    this.flushedAt = now;
    this.flush();
  }

  /** Ends the connection after what was queued; later writes are dropped. */
  end(): void {
    this.flush();
    this.ended = true;
    this.socket.end();
  }

  /** Sends what this tick queued now rather than at the end of the tick. */
  flush(): void {
    this.urgent = false;
    if (this.mergeSlot >= 0) this.tick.cancelMerge(this);
    const lone = this.lone;
    if (lone !== undefined) {
      this.lone = undefined;
      if (this.socket.writable && !this.send(lone.range(this.loneStart, this.loneEnd))) lone.kept = true;
      this.tick.unref(lone);
      return;
    }
    const batch = this.batch;
    if (batch === undefined) return;
    const length = this.used;
    this.batch = undefined;
    this.used = 0;
    if (!this.socket.writable) {
      this.tick.release(batch);
      return;
    }
    if (this.heldElsewhere > 0) {
      // Queued behind bytes the kernel has not taken: a copy of its own, so
      // the socket's queue does not hold the batch's spare room as well.
      this.queue(Buffer.from(batch.subarray(0, length)));
      this.tick.release(batch);
      return;
    }
    // Taken whole by the kernel: nothing refers to the batch any more.
    if (this.send(batch.subarray(0, length))) this.tick.release(batch);
  }

  /** Writes `bytes`, which must be all that is queued; true when the kernel took them whole (nothing refers to them any more). */
  private send(bytes: Buffer): boolean {
    if (this.heldElsewhere === 0) {
      const written = this.tick.handles.write(this.socket, bytes, this);
      if (written === 'queued') {
        this.queuedInHandle = bytes.length;
        return false;
      }
      if (written !== 'unavailable') return true; // taken, or failed and the socket destroyed
    }
    this.queue(bytes);
    return this.heldInWritable() === 0;
  }

  /** Writes through the socket's Writable, which queues what the kernel does not take. */
  private queue(bytes: Buffer): void {
    this.inWritable = true;
    // A write() that says false means the Writable emits 'drain' itself.
    if (!this.socket.write(bytes, this.drained)) this.needDrain = false;
  }

  /**
   * Makes room for `length` more bytes in this tick's batch; returns where
   * they go, or -1 after end(). `urgent`: not shared media, so they leave at
   * the end of the tick, with whatever media is merging.
   */
  private reserve(length: number, urgent: boolean): number {
    if (this.ended) return -1;
    if (this.lone !== undefined) this.unshare(length);
    const pos = this.used;
    const needed = pos + length;
    const batch = this.batch;
    if (batch === undefined) {
      this.batch = this.tick.takeBatch(needed);
    } else if (needed > batch.length) {
      const grown = this.tick.takeBatch(needed);
      grown.set(batch.subarray(0, pos));
      this.tick.release(batch);
      this.batch = grown;
    }
    this.used = needed;
    if (urgent) this.urgent = true;
    // A merging writer is flushed at its deadline unless this makes it due now.
    if (batch === undefined || urgent || needed >= MAX_MERGED_BYTES) this.markDirty();
    return pos;
  }

  /** The shared messages sent so far go into a batch (with room for `extra` more), so they no longer refer to the tick's shared buffers. */
  private unshare(extra: number): void {
    const lone = this.lone!;
    const shared = lone.range(this.loneStart, this.loneEnd);
    this.lone = undefined;
    this.batch = this.tick.takeBatch(shared.length + extra);
    this.batch.set(shared);
    this.used = shared.length;
    this.tick.unref(lone);
  }

  private markDirty(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.tick.markDirty(this);
  }
}
