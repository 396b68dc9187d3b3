import { describe, expect, it } from 'vitest';
import { decodeAmf0, encodeAmf0 } from './amf0.ts';
import { connectResult, onStatus, parseCommand, parseData } from './commands.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType } from './message-types.ts';

describe('commands', () => {
  it('parses an AMF3 command message (type 17): format byte, AMF0 values, AVM+ switches', () => {
    // 0x00, "connect", 1, AVM+ {app: "live"} as a dynamic anonymous AMF3 object
    const amf3Object = Buffer.from([0x11, 0x0a, 0x0b, 0x01, 0x07, ...Buffer.from('app'), 0x06, 0x09, ...Buffer.from('live'), 0x01]);
    const body = Buffer.concat([Buffer.from([0]), encodeAmf0('connect', 1), amf3Object]);
    const cmd = parseCommand(MessageType.commandAmf3, body);
    expect(cmd).toEqual({ name: 'connect', transactionId: 1, object: { app: 'live' }, args: [] });
  });

  it('parses an AMF3 data message (type 15)', () => {
    const body = Buffer.concat([Buffer.from([0]), encodeAmf0('@setDataFrame', 'onMetaData', { width: 640 })]);
    expect(parseData(MessageType.dataAmf3, body)).toEqual(['@setDataFrame', 'onMetaData', { width: 640 }]);
  });

  it('refuses a command without a name', () => {
    expect(() => parseCommand(MessageType.commandAmf0, encodeAmf0(1, 2))).toThrow(RtmpProtocolError);
  });

  it('builds the connect _result and onStatus FFmpeg and librtmp expect', () => {
    expect(decodeAmf0(connectResult(1, 0))).toEqual([
      '_result',
      1,
      { fmsVer: 'FMS/3,5,3,888', capabilities: 127, mode: 1 },
      {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
        data: { version: '3,5,3,888' },
      },
    ]);
    expect(decodeAmf0(onStatus({ level: 'error', code: 'NetStream.Publish.BadName', description: 'taken' }))).toEqual([
      'onStatus',
      0,
      null,
      { level: 'error', code: 'NetStream.Publish.BadName', description: 'taken' },
    ]);
  });
});
