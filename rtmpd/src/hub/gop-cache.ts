import { BufferPool } from '../memory/buffer-pool.ts';
import type { MediaKind } from '../flv/media-kind.ts';
import { MediaPacket, ownMemory } from './packet.ts';

/** Bodies are copied into blocks of this size; a larger body gets a copy of its own. */
const BLOCK_BYTES = 16 * 1024;
/**
 * Blocks shared by every stream's cache: a stream whose GOP restarts hands
 * its blocks back, and streams take them as their GOPs grow. Keyframes of
 * different streams fall at different moments, so the blocks in use track
 * the sum of the current GOPs (about half their peak) rather than every
 * stream's peak at once. Up to 1024 spare blocks (16 MiB) are kept because
 * restarting GOPs hand blocks back in bursts: a pool that let them go would
 * allocate them again moments later, churning the external memory that
 * drives V8's major GCs.
 */
const blockPool = new BufferPool(1024 * BLOCK_BYTES);

const KINDS: readonly MediaKind[] = ['audio', 'video'];
/** Per cached packet: kind (index into KINDS), keyframe, timestamp, receivedAt, where, offset, length. */
const FIELDS = 7;

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
 * fields live in one typed array for the same reason: an object per cached
 * packet would live just long enough to be promoted and die in V8's old
 * generation a GOP later.
 */
export class GopCache {
  /** FIELDS numbers per packet; `where` is a block index, or -1 - an index into `large`. */
  private fields = new Float64Array(64 * FIELDS);
  private count = 0;
  private readonly blocks: Buffer[] = [];
  /** Bodies kept whole: owned ones, and copies of those larger than a block. */
  private readonly large: Buffer[] = [];
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
    if (this.size > this.maxBytes) {
      this.clear();
      return true;
    }
    const { body } = packet;
    if (owned || body.length > BLOCK_BYTES) {
      this.large.push(owned ? body : ownMemory(body));
      this.record(packet, -this.large.length, 0);
      return false;
    }
    if (this.blocks.length === 0 || this.used + body.length > BLOCK_BYTES) {
      this.blocks.push(blockPool.take(BLOCK_BYTES));
      this.used = 0;
    }
    this.blocks[this.blocks.length - 1]!.set(body, this.used);
    this.record(packet, this.blocks.length - 1, this.used);
    this.used += body.length;
    return false;
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
    const f = this.fields;
    let pos = 0;
    for (let i = 0; i < this.count * FIELDS; i += FIELDS) {
      const where = f[i + 4]!;
      const offset = f[i + 5]!;
      const length = f[i + 6]!;
      const memory = where >= 0 ? this.blocks[where]! : this.large[-1 - where]!;
      const body = copy.subarray(pos, pos + length);
      body.set(memory.subarray(offset, offset + length));
      pos += length;
      packets.push(new MediaPacket({ kind: KINDS[f[i]!]!, timestamp: f[i + 2]!, body, keyframe: f[i + 1] === 1, receivedAt: f[i + 3]! }));
    }
    return packets;
  }

  private record(packet: MediaPacket, where: number, offset: number): void {
    if ((this.count + 1) * FIELDS > this.fields.length) {
      const grown = new Float64Array(this.fields.length * 2);
      grown.set(this.fields);
      this.fields = grown;
    }
    const f = this.fields;
    const i = this.count++ * FIELDS;
    f[i] = packet.kind === 'video' ? 1 : 0;
    f[i + 1] = packet.keyframe ? 1 : 0;
    f[i + 2] = packet.timestamp;
    f[i + 3] = packet.receivedAt;
    f[i + 4] = where;
    f[i + 5] = offset;
    f[i + 6] = packet.body.length;
  }

  /** A keyframe starts a new GOP; the last one's blocks go back to the pool. */
  private restart(): void {
    for (const block of this.blocks) blockPool.give(block);
    this.blocks.length = 0;
    this.large.length = 0;
    this.count = 0;
    this.used = 0;
    this.size = 0;
    this.collecting = true;
  }
}
