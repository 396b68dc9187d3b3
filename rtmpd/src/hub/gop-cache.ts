import type { AudioTrackInfo } from '../flv/track.ts';
import { BufferPool } from '../memory/buffer-pool.ts';
import { MediaPacket, PacketFlag } from './packet.ts';

/**
 * Bodies are copied into blocks of this size, one after another, a body that
 * does not fit continuing in the next block; so a stream's cache wastes at
 * most the unused end of its last block, half a block on average (1 MiB at
 * 500 streams).
 */
const BLOCK_BYTES = 4 * 1024;
/**
 * Blocks shared by every stream's cache: a stream whose GOP restarts hands
 * its blocks back, and streams take them as their GOPs grow. Keyframes of
 * different streams fall at different moments, so the blocks in use track
 * the sum of the current GOPs (about half their peak) rather than every
 * stream's peak at once. Up to 16 MiB of spare blocks are kept because
 * restarting GOPs hand blocks back in bursts: a pool that let them go would
 * allocate them again moments later, churning the external memory that
 * drives V8's major GCs.
 */
const blockPool = new BufferPool(16 * 1024 * 1024);

/**
 * Per cached packet, 24 bytes: receivedAt as a double, then four 32-bit
 * numbers: timestamp, body length, flags with the payload offset above them
 * (an offset lies within an RTMP message, whose length has 24 bits) and,
 * for video, composition time (signed), for audio, which of the GOP's audio
 * tracks it belongs to (its index in `audioTracks` plus one; 0: none). Where a body is follows from the order: copied
 * bodies lie end to end in the blocks, owned ones in `owned`.
 */
const RECORD_BYTES = 24;
/**
 * What a cached packet costs beyond its body, counted against the bound: its
 * record, and above all what a joining player's copy of it takes (a
 * MediaPacket and a Buffer view each, then the message sent to the player).
 * Measured against a running rtmpd (2026-11-30 21:05–21:08 UTC; see
 * docs/performance.md): after a keyframe and 900,000 2-byte audio messages,
 * a player's join took 392–417 bytes of RSS a packet, five runs; the
 * snapshot alone holds 212 bytes a packet on the heap. The largest, rounded up.
 */
export const PACKET_COST_BYTES = 420;
/** The packet's PacketFlag bits, and the cache's own above them. */
const VIDEO = 8;
const OWNED = 16;
const FLAG_BITS = 5;

/**
 * The packets since the last keyframe, so a player that joins starts with a
 * decodable picture at once. Bounded in bytes: a GOP that outgrows the bound
 * (an encoder with a 60 s keyframe interval) is dropped, and caching resumes
 * at the next keyframe.
 *
 * Bodies are copied into pooled blocks, so the publisher's buffers die young
 * and the cache's memory never waits for a major GC: a publisher's buffer
 * held for a GOP would be promoted, and each would pin a 64 KiB slab of
 * Node's shared pool. The blocks never leave the cache: a joining player
 * gets a copy (joins are rare; a GOP is a few hundred KiB). The packets'
 * fields live in one typed buffer for the same reason: an object per cached
 * packet would live just long enough to be promoted and die in V8's old
 * generation a GOP later.
 */
export class GopCache {
  /** The records, RECORD_BYTES each, through a view of each width. */
  private doubles = new Float64Array(64 * (RECORD_BYTES / 8));
  private words = new Uint32Array(this.doubles.buffer);
  private count = 0;
  private readonly blocks: Buffer[] = [];
  /** Owned bodies, kept whole. */
  private readonly owned: Buffer[] = [];
  /** The audio tracks of the GOP's audio packets, in order: one, or a few if the audio changed within the GOP. */
  private readonly audioTracks: AudioTrackInfo[] = [];
  private used = 0;
  private size = 0;
  private collecting = false;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * `owned`: the body is memory of its own that nobody will change (a
   * keyframe the stream keeps as its last), so the cache keeps it as it is.
   * Returns true when this packet made the GOP outgrow the bound (it is dropped).
   */
  add(packet: MediaPacket, owned = false): boolean {
    if (this.maxBytes === 0 || packet.sequenceHeader || packet.kind === 'data') return false;
    if (packet.kind === 'video' && packet.keyframe) this.restart();
    if (!this.collecting) return false;
    this.size += packet.body.length;
    // Bodies alone would let a GOP of tiny messages (3 bytes each on the wire) hold millions of packets.
    if (this.size + (this.count + 1) * PACKET_COST_BYTES > this.maxBytes) {
      this.clear();
      return true;
    }
    const { body } = packet;
    this.record(packet, owned);
    if (owned) {
      this.owned.push(body);
      return false;
    }
    if (this.blocks.length === 0 || this.used === BLOCK_BYTES) this.nextBlock();
    for (let from = 0; ;) {
      const room = BLOCK_BYTES - this.used;
      const block = this.blocks[this.blocks.length - 1]!;
      if (body.length - from <= room) {
        block.set(from === 0 ? body : body.subarray(from), this.used);
        this.used += body.length - from;
        return false;
      }
      block.set(body.subarray(from, from + room), this.used);
      from += room;
      this.nextBlock();
    }
  }

  clear(): void {
    this.restart();
    this.collecting = false;
  }

  /** The cached packets, with their bodies copied into memory of their own. */
  snapshot(): MediaPacket[] {
    const packets: MediaPacket[] = [];
    if (this.count === 0) return packets;
    const copy = Buffer.allocUnsafe(this.size);
    const { doubles, words } = this;
    let pos = 0;
    let owned = 0;
    // Where the next copied body starts: block, and offset in it.
    let block = 0;
    let from = 0;
    for (let i = 0; i < this.count; i++) {
      const w = i * (RECORD_BYTES / 4);
      const length = words[w + 3]!;
      const flags = words[w + 4]! & ((1 << FLAG_BITS) - 1);
      const body = copy.subarray(pos, pos + length);
      pos += length;
      if (flags & OWNED) body.set(this.owned[owned++]!);
      else
        for (let done = 0; done < length;) {
          if (from === BLOCK_BYTES) {
            block++;
            from = 0;
          }
          const n = Math.min(BLOCK_BYTES - from, length - done);
          body.set(this.blocks[block]!.subarray(from, from + n), done);
          done += n;
          from += n;
        }
      const kind = flags & VIDEO ? 'video' : 'audio';
      const packetFlags = flags & (PacketFlag.keyframe | PacketFlag.sequenceHeader | PacketFlag.frame);
      const receivedAt = doubles[i * (RECORD_BYTES / 8)]!;
      const payloadOffset = words[w + 4]! >>> FLAG_BITS;
      const last = words[w + 5]!;
      packets.push(
        kind === 'video'
          ? new MediaPacket(kind, words[w + 2]!, body, receivedAt, packetFlags, payloadOffset, last | 0)
          : new MediaPacket(kind, words[w + 2]!, body, receivedAt, packetFlags, payloadOffset, 0, this.audioTracks[last - 1]),
      );
    }
    return packets;
  }

  private nextBlock(): void {
    this.blocks.push(blockPool.take(BLOCK_BYTES));
    this.used = 0;
  }

  private record(packet: MediaPacket, owned: boolean): void {
    if ((this.count + 1) * RECORD_BYTES > this.doubles.byteLength) {
      const grown = new Float64Array(this.doubles.length * 2);
      grown.set(this.doubles);
      this.doubles = grown;
      this.words = new Uint32Array(grown.buffer);
    }
    const i = this.count++;
    const w = i * (RECORD_BYTES / 4);
    const flags = packet.flags | (packet.kind === 'video' ? VIDEO : 0) | (owned ? OWNED : 0);
    this.doubles[i * (RECORD_BYTES / 8)] = packet.receivedAt;
    this.words[w + 2] = packet.timestamp;
    this.words[w + 3] = packet.body.length;
    this.words[w + 4] = flags | (packet.payloadOffset << FLAG_BITS);
    this.words[w + 5] = packet.kind === 'video' ? packet.compositionTime : this.audioTrackNumber(packet.audioTrack);
  }

  /** `track`'s index in audioTracks plus one (added if new), or 0 for none. */
  private audioTrackNumber(track: AudioTrackInfo | undefined): number {
    if (track === undefined) return 0;
    const tracks = this.audioTracks;
    if (tracks[tracks.length - 1] !== track) tracks.push(track);
    return tracks.length;
  }

  /** A keyframe starts a new GOP; the last one's blocks go back to the pool. */
  private restart(): void {
    for (const block of this.blocks) blockPool.give(block);
    this.blocks.length = 0;
    this.owned.length = 0;
    this.audioTracks.length = 0;
    this.count = 0;
    this.used = 0;
    this.size = 0;
    this.collecting = true;
  }
}
