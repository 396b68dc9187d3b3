import { MediaPacket, type PacketKind } from './packet.ts';

/** Bodies are copied into blocks of this size; a larger body is kept as it is. */
const BLOCK_BYTES = 16 * 1024;
/** Spare blocks kept for the next GOP of any stream; beyond this they are let go. */
const MAX_SPARE_BLOCKS = 256;

/**
 * Blocks shared by every stream's cache: a stream whose GOP restarts hands
 * its blocks back, and streams take them as their GOPs grow. Keyframes of
 * different streams fall at different moments, so the blocks in use track
 * the sum of the current GOPs (about half their peak) rather than every
 * stream's peak at once.
 */
const spareBlocks: Buffer[] = [];

function takeBlock(): Buffer {
  return spareBlocks.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES);
}

function giveBack(blocks: Buffer[]): void {
  for (const block of blocks) {
    if (spareBlocks.length >= MAX_SPARE_BLOCKS) break;
    spareBlocks.push(block);
  }
  blocks.length = 0;
}

interface CachedPacket {
  kind: PacketKind;
  timestamp: number;
  keyframe: boolean;
  receivedAt: number;
  /** Where the body lives: an arena block, or the original body when it is larger than one. */
  memory: Buffer;
  offset: number;
  length: number;
}

/**
 * The packets since the last keyframe, so a player that joins starts with a
 * decodable picture at once. Bounded in bytes: a GOP that outgrows the bound
 * (an encoder with a 60 s keyframe interval) is dropped, and caching resumes
 * at the next keyframe.
 *
 * Bodies are copied into pooled blocks, so the publisher's buffers die young
 * and the cache's memory never waits for a major GC: holding the publisher's
 * buffers for a GOP got them promoted, each pinning a 64 KiB slab of Node's
 * shared pool, and RSS ran at 2.5 times the cached bytes. The blocks never
 * leave the cache: a joining player gets a copy (joins are rare; a GOP is a
 * few hundred KiB).
 */
export class GopCache {
  private readonly packets: CachedPacket[] = [];
  private readonly blocks: Buffer[] = [];
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

  add(packet: MediaPacket): void {
    if (this.maxBytes === 0 || packet.sequenceHeader || packet.kind === 'data') return;
    if (packet.kind === 'video' && packet.keyframe) this.restart();
    if (!this.collecting) return;
    this.size += packet.body.length;
    if (this.size > this.maxBytes) {
      this.clear();
      return;
    }
    const { kind, timestamp, keyframe, receivedAt, body } = packet;
    if (body.length > BLOCK_BYTES) {
      this.packets.push({ kind, timestamp, keyframe, receivedAt, memory: body, offset: 0, length: body.length });
      return;
    }
    if (this.blocks.length === 0 || this.used + body.length > BLOCK_BYTES) {
      this.blocks.push(takeBlock());
      this.used = 0;
    }
    const memory = this.blocks[this.blocks.length - 1]!;
    memory.set(body, this.used);
    this.packets.push({ kind, timestamp, keyframe, receivedAt, memory, offset: this.used, length: body.length });
    this.used += body.length;
  }

  clear(): void {
    this.restart();
    this.collecting = false;
  }

  /** The cached packets, with their bodies copied into memory of their own. */
  snapshot(): MediaPacket[] {
    if (this.packets.length === 0) return [];
    const copy = Buffer.allocUnsafe(this.size);
    let pos = 0;
    return this.packets.map((p) => {
      const body = copy.subarray(pos, pos + p.length);
      body.set(p.memory.subarray(p.offset, p.offset + p.length));
      pos += p.length;
      return new MediaPacket(p.kind, p.timestamp, body, p.keyframe, false, p.receivedAt);
    });
  }

  /** A keyframe starts a new GOP; the last one's blocks go back to the pool. */
  private restart(): void {
    giveBack(this.blocks);
    this.packets.length = 0;
    this.used = 0;
    this.size = 0;
    this.collecting = true;
  }
}
