// Command message bodies (AMF0) as FMS and SRS send them: the _result,
// _error, onStatus and onFCPublish replies OBS, FFmpeg and librtmp look for,
// and the command parser shared by server and client.
import { type AmfObject, type AmfValue } from './amf-values.ts';
import { encodeAmf0, Amf0Reader, type AmfEncodable } from './amf0.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType } from './message-types.ts';

export interface Command {
  name: string;
  transactionId: number;
  /** The command object (connect's properties), null for most others. */
  object: AmfValue;
  args: AmfValue[];
}

/**
 * Decodes a type 20 (AMF0) or type 17 (AMF3) command. An AMF3 command starts
 * with a format byte 0 and is otherwise AMF0 with AVM+ switches.
 */
export function parseCommand(typeId: number, body: Buffer): Command {
  let start = 0;
  if (typeId === MessageType.commandAmf3 && body.length > 0 && body[0] === 0) start = 1;
  const values = new Amf0Reader(body, start).readAll();
  const [name, transactionId, object, ...args] = values;
  if (typeof name !== 'string') throw new RtmpProtocolError('bad_command', 'command without a name');
  return { name, transactionId: typeof transactionId === 'number' ? transactionId : 0, object: object ?? null, args };
}

/** Decodes a type 18 (AMF0) or type 15 (AMF3) data message into its values. */
export function parseData(typeId: number, body: Buffer): AmfValue[] {
  const start = typeId === MessageType.dataAmf3 && body.length > 0 && body[0] === 0 ? 1 : 0;
  return new Amf0Reader(body, start).readAll();
}

export const isObject = (v: AmfValue): v is AmfObject => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export function command(name: string, transactionId: number, object: AmfEncodable, ...args: AmfEncodable[]): Buffer {
  return encodeAmf0(name, transactionId, object, ...args);
}

/** What FMS 3.5 answers to connect; clients check the code and sometimes fmsVer. */
export function connectResult(transactionId: number, objectEncoding: number): Buffer {
  return command(
    '_result',
    transactionId,
    { fmsVer: 'FMS/3,5,3,888', capabilities: 127, mode: 1 },
    {
      level: 'status',
      code: 'NetConnection.Connect.Success',
      description: 'Connection succeeded.',
      objectEncoding,
      data: { version: '3,5,3,888' },
    },
  );
}

export function result(transactionId: number, ...values: AmfEncodable[]): Buffer {
  return command('_result', transactionId, null, ...(values.length ? values : [undefined]));
}

export function errorResult(transactionId: number, code: string, description: string): Buffer {
  return command('_error', transactionId, null, { level: 'error', code, description });
}

type StatusLevel = 'status' | 'error' | 'warning';

export interface StatusInfo {
  level: StatusLevel;
  code: string;
  description: string;
  [key: string]: AmfEncodable;
}

export function onStatus(info: StatusInfo): Buffer {
  return command('onStatus', 0, null, info);
}

export function onFCPublish(streamName: string): Buffer {
  return command('onFCPublish', 0, null, { code: 'NetStream.Publish.Start', description: streamName });
}

export function onFCUnpublish(streamName: string): Buffer {
  return command('onFCUnpublish', 0, null, { code: 'NetStream.Unpublish.Success', description: streamName });
}

/** The data message Flash players need before they may read samples (snapshots, audio analysis). */
export const rtmpSampleAccess = (): Buffer => encodeAmf0('|RtmpSampleAccess', true, true);
