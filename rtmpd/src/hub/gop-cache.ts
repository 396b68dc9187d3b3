import type { MediaPacket } from './packet.ts';

/**
 * The packets since the last keyframe, so a player that joins starts with a
 * decodable picture at once. Bounded in bytes: a GOP that outgrows the bound
 * (an encoder with a 60 s keyframe interval) is dropped, and caching resumes
 * at the next keyframe.
 */
export class GopCache {
  private packets: MediaPacket[] = [];
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
    if (packet.kind === 'video' && packet.keyframe) {
      this.clear();
      this.collecting = true;
    }
    if (!this.collecting) return;
    this.size += packet.body.length;
    if (this.size > this.maxBytes) {
      this.clear();
      return;
    }
    this.packets.push(packet);
  }

  clear(): void {
    this.packets = [];
    this.size = 0;
    this.collecting = false;
  }

  snapshot(): readonly MediaPacket[] {
    return this.packets;
  }
}
