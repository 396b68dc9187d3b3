// Protocol control messages (types 1-6) and User Control events (type 4):
// builders of the ready-to-write bytes, and a parser for User Control.
import { serializeMessage } from './chunk-writer.ts';
import { RtmpProtocolError } from './errors.ts';
import { ChunkStreamId, MessageType } from './message-types.ts';

export const UserControlEvent = {
  streamBegin: 0,
  streamEOF: 1,
  streamDry: 2,
  setBufferLength: 3,
  streamIsRecorded: 4,
  pingRequest: 6,
  pingResponse: 7,
} as const;

/** Set Peer Bandwidth limit types. */
export const BandwidthLimit = { hard: 0, soft: 1, dynamic: 2 } as const;

// Control messages go on chunk stream 2, message stream 0, and are always one
// chunk (at most 10 bytes of body), so the chunk size never matters.
function control(typeId: number, body: Buffer): Buffer {
  return serializeMessage(ChunkStreamId.protocol, typeId, 0, 0, body, 128);
}

function u32(value: number): Buffer {
  const body = Buffer.allocUnsafe(4);
  body.writeUInt32BE(value >>> 0, 0);
  return body;
}

export const setChunkSize = (size: number): Buffer => control(MessageType.setChunkSize, u32(size));
export const abortMessage = (csid: number): Buffer => control(MessageType.abort, u32(csid));
export const acknowledgement = (sequence: number): Buffer => control(MessageType.acknowledgement, u32(sequence));
export const windowAckSize = (size: number): Buffer => control(MessageType.windowAckSize, u32(size));

export function setPeerBandwidth(size: number, limit: number = BandwidthLimit.dynamic): Buffer {
  const body = Buffer.allocUnsafe(5);
  body.writeUInt32BE(size >>> 0, 0);
  body[4] = limit;
  return control(MessageType.setPeerBandwidth, body);
}

function userControl(event: number, ...values: number[]): Buffer {
  const body = Buffer.allocUnsafe(2 + values.length * 4);
  body.writeUInt16BE(event, 0);
  values.forEach((v, i) => body.writeUInt32BE(v >>> 0, 2 + i * 4));
  return control(MessageType.userControl, body);
}

export const streamBegin = (streamId: number): Buffer => userControl(UserControlEvent.streamBegin, streamId);
export const streamEOF = (streamId: number): Buffer => userControl(UserControlEvent.streamEOF, streamId);
export const pingResponse = (timestamp: number): Buffer => userControl(UserControlEvent.pingResponse, timestamp);
export const setBufferLength = (streamId: number, ms: number): Buffer => userControl(UserControlEvent.setBufferLength, streamId, ms);

export interface UserControl {
  event: number;
  /** Stream id, or the ping timestamp. */
  value: number;
  /** SetBufferLength's buffer length in ms. */
  bufferLength?: number;
}

export function parseUserControl(body: Buffer): UserControl {
  if (body.length < 6) throw new RtmpProtocolError('bad_user_control', `User Control of ${body.length} bytes`);
  const event = body.readUInt16BE(0);
  const value = body.readUInt32BE(2);
  if (event === UserControlEvent.setBufferLength) {
    if (body.length < 10) throw new RtmpProtocolError('bad_user_control', 'SetBufferLength too short');
    return { event, value, bufferLength: body.readUInt32BE(6) };
  }
  return { event, value };
}

/** Reads the 4-byte value of Set Chunk Size, Acknowledgement, Window Ack Size, Set Peer Bandwidth. */
export function readControlValue(body: Buffer, name: string): number {
  if (body.length < 4) throw new RtmpProtocolError(`bad_${name}`, `${name} body of ${body.length} bytes`);
  return body.readUInt32BE(0);
}
