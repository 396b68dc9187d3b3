import { describe, expect, it } from 'vitest';
import { splitAggregate } from './aggregate.ts';
import { RtmpProtocolError } from './errors.ts';

function tag(typeId: number, timestamp: number, body: Buffer): Buffer {
  const header = Buffer.alloc(11);
  header[0] = typeId;
  header.writeUIntBE(body.length, 1, 3);
  header.writeUIntBE(timestamp & 0xffffff, 4, 3);
  header[7] = timestamp >>> 24;
  const back = Buffer.alloc(4);
  back.writeUInt32BE(11 + body.length, 0);
  return Buffer.concat([header, body, back]);
}

describe('splitAggregate', () => {
  it('splits sub-messages and rebases their timestamps', () => {
    const body = Buffer.concat([
      tag(9, 5000, Buffer.from([0x17, 1])),
      tag(8, 5023, Buffer.from([0xaf, 1, 2])),
      tag(9, 5040, Buffer.from([0x27, 1])),
    ]);
    const out: [number, number, number[]][] = [];
    splitAggregate(body, 100, (typeId, ts, b) => out.push([typeId, ts, [...b]]));
    expect(out).toEqual([
      [9, 100, [0x17, 1]],
      [8, 123, [0xaf, 1, 2]],
      [9, 140, [0x27, 1]],
    ]);
  });

  it('refuses truncated sub-messages', () => {
    const body = tag(9, 0, Buffer.alloc(20));
    expect(() => splitAggregate(body.subarray(0, 15), 0, () => {})).toThrow(RtmpProtocolError);
    expect(() => splitAggregate(body.subarray(0, 5), 0, () => {})).toThrow(RtmpProtocolError);
  });
});
