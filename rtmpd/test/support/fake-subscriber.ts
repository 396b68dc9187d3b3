// A hub subscriber for tests: it keeps what the hub did to it, and its queue
// is whatever the test says.
import type { MediaPacket } from '../../src/hub/packet.ts';
import type { Stream } from '../../src/hub/stream.ts';
import type { CloseReason, DeliveryPolicy, Subscriber, SubscriberKind } from '../../src/hub/subscriber.ts';

export class FakeSubscriber implements Subscriber {
  readonly kind: SubscriberKind;
  readonly delivery: DeliveryPolicy;
  /** The stream it began with, and how many packets had arrived before (0 when the hub keeps its contract). */
  began: Stream | undefined;
  writesBeforeBegin = 0;
  readonly packets: MediaPacket[] = [];
  readonly closed: CloseReason[] = [];
  /** Bytes it says are queued: set it to stall the subscriber. */
  pending = 0;
  /** Written bytes stay queued, as with a reader that never reads. */
  private readonly neverDrains: boolean;

  constructor(kind: SubscriberKind = 'rtmp', options: { neverDrains?: boolean } = {}) {
    this.kind = kind;
    this.delivery = kind === 'recorder' ? 'lossless' : 'skip-to-keyframe';
    this.neverDrains = options.neverDrains ?? false;
  }

  begin(stream: Stream): void {
    this.began = stream;
  }

  pendingBytes(): number {
    return this.pending;
  }

  write(packet: MediaPacket): void {
    if (this.began === undefined) this.writesBeforeBegin++;
    if (this.neverDrains) this.pending += packet.body.length;
    this.packets.push(packet);
  }

  close(reason: CloseReason): void {
    this.closed.push(reason);
  }
}
