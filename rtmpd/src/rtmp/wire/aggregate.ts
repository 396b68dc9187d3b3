// Aggregate messages (type 22): several FLV-tag-shaped sub-messages in one
// RTMP message, as FMS/Wowza relays send them. Sub-bodies are views into the
// aggregate's buffer (no copy); their timestamps are rebased so the first
// sub-message gets the aggregate's own timestamp.
import { RtmpProtocolError } from './errors.ts';

export type AggregateHandler = (typeId: number, timestamp: number, body: Buffer) => void;

const TAG_HEADER = 11;
const BACK_POINTER = 4;

export function splitAggregate(body: Buffer, timestamp: number, onMessage: AggregateHandler): void {
  let pos = 0;
  let first: number | undefined;
  while (pos < body.length) {
    if (body.length - pos < TAG_HEADER) throw new RtmpProtocolError('bad_aggregate', 'truncated sub-message header');
    const typeId = body[pos]!;
    const size = body.readUIntBE(pos + 1, 3);
    const subTimestamp = (body.readUIntBE(pos + 4, 3) | (body[pos + 7]! << 24)) >>> 0;
    const start = pos + TAG_HEADER;
    if (body.length - start < size) throw new RtmpProtocolError('bad_aggregate', 'truncated sub-message body');
    first ??= subTimestamp;
    onMessage(typeId, (timestamp + subTimestamp - first) >>> 0, body.subarray(start, start + size));
    // The back pointer is optional at the very end.
    pos = Math.min(body.length, start + size + BACK_POINTER);
  }
}
