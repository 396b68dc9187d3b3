import type { MediaPacket } from './packet.ts';

/**
 * What a subscriber that joins is sent at once: the stream's metadata and
 * decoder config, the config stamped with the GOP's first timestamp, then
 * the cached GOP. One object for every subscriber that joins until the
 * stream's next packet: in a join storm a thousand players join between two
 * packets, and a subscriber that can share bytes serializes the burst once
 * for all of them (Subscriber.writeBurst) instead of once per player.
 */
export class JoinBurst {
  readonly packets: readonly MediaPacket[];
  /** The packets' body bytes, as the stream counts what it hands to a subscriber. */
  readonly bodyBytes: number;
  /** A newer packet reached the stream: later joiners get another burst, and what was made of this one may go. */
  replaced = false;

  constructor(packets: readonly MediaPacket[]) {
    this.packets = packets;
    let bytes = 0;
    for (const packet of packets) bytes += packet.body.length;
    this.bodyBytes = bytes;
  }
}
