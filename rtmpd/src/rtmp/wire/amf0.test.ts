import { describe, expect, it } from 'vitest';
import { Amf0Reader, decodeAmf0, EcmaArray, encodeAmf0 } from './amf0.ts';
import { AMF_MAX_VALUES } from './amf-values.ts';
import { RtmpProtocolError } from './errors.ts';
import { prng } from '../../../test/support/random.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('AMF0', () => {
  it('round-trips every type the encoder writes', () => {
    const values = [
      'connect',
      1,
      { app: 'live', tcUrl: 'rtmp://h/live', fpad: false, capabilities: 15, audioCodecs: 3191, nested: { a: [1, 'two', null] } },
      null,
      undefined,
      true,
      -0.5,
      new Date(1_700_000_000_000),
      'x'.repeat(70_000), // long string
      [1, 2, 3],
    ];
    const decoded = decodeAmf0(encodeAmf0(...values));
    expect(decoded).toEqual(values);
  });

  it('encodes ECMA arrays and decodes them as objects', () => {
    const body = encodeAmf0('onMetaData', new EcmaArray({ width: 1280, height: 720, encoder: 'obs' }));
    expect(body[13]).toBe(0x08);
    expect(decodeAmf0(body)).toEqual(['onMetaData', { width: 1280, height: 720, encoder: 'obs' }]);
  });

  it('decodes references, typed objects, unsupported and XML documents', () => {
    // object {a: 1}, then a reference to it
    const object = hex('03 0001 61 00 3ff0000000000000 0000 09');
    const reference = hex('07 0000');
    const typed = hex('10 0003 466f6f 0001 62 01 01 0000 09'); // class "Foo" {b: true}
    const unsupported = hex('0d');
    const xml = hex('0f 00000003 3c612f'); // "<a/"
    const values = decodeAmf0(Buffer.concat([object, reference, typed, unsupported, xml]));
    expect(values[0]).toEqual({ a: 1 });
    expect(values[1]).toBe(values[0]);
    expect(values[2]).toEqual({ b: true });
    expect(values[3]).toBeUndefined();
    expect(values[4]).toBe('<a/');
  });

  it('switches to AMF3 after an AVM+ marker', () => {
    // AMF3: string "hi", integer 5, object {x: 2} (dynamic, anonymous), true, double 1.5, array [1, "hi"(ref)]
    const body = hex('11 06 05 6869  11 04 05  11 0a 0b 01 03 78 04 02 01  11 03  11 05 3ff8000000000000  11 09 05 01 04 01 06 00');
    expect(decodeAmf0(body)).toEqual(['hi', 5, { x: 2 }, true, 1.5, [1, 'hi']]);
  });

  it('does not let a "__proto__" key reach the prototype', () => {
    const body = encodeAmf0({ ['__proto__']: { polluted: true } } as never);
    const [value] = decodeAmf0(
      Buffer.concat([hex('03 0009'), Buffer.from('__proto__'), hex('03 0008'), Buffer.from('polluted'), hex('0101 000009 000009')]),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(value as object)).toEqual(['__proto__']);
    expect(body.length).toBeGreaterThan(0);
  });

  it('refuses malformed input with RtmpProtocolError', () => {
    const cases: [string, string][] = [
      ['02 0010 6869', 'amf_truncated'], // string longer than the buffer
      ['0a ffffffff', 'amf_truncated'], // strict array count beyond the bytes
      ['07 0005', 'amf_bad_reference'],
      ['04', 'amf_bad_marker'], // movieclip
      ['00 3ff0', 'amf_truncated'],
    ];
    for (const [bytes, reason] of cases) {
      let caught: unknown;
      try {
        decodeAmf0(hex(bytes));
      } catch (err) {
        caught = err;
      }
      expect(caught, bytes).toBeInstanceOf(RtmpProtocolError);
      expect((caught as RtmpProtocolError).reason).toBe(reason);
    }
  });

  it('refuses references that repeat more than the message holds, or refer to a value from within it', () => {
    const reason = (body: Buffer) => {
      try {
        decodeAmf0(body);
      } catch (err) {
        return (err as RtmpProtocolError).reason;
      }
      return 'decoded';
    };
    const big = Buffer.concat([hex('0a 00000001 0c 0000ea60'), Buffer.alloc(60_000, 0x78)]); // [60000-byte string], reference 0
    expect(reason(Buffer.concat([big, hex('07 0000')]))).toBe('decoded'); // repeats it once: within the message's size
    expect(reason(Buffer.concat([big, hex('07 0000 07 0000')]))).toBe('amf_too_large');
    // Arrays of two references to the one before: 2^30 copies of it in a few bytes more.
    const levels = Array.from({ length: 30 }, (_, i) =>
      hex(`0a 00000002 07 ${i.toString(16).padStart(4, '0')} 07 ${i.toString(16).padStart(4, '0')}`),
    );
    expect(reason(Buffer.concat([big, ...levels]))).toBe('amf_too_large');
    expect(reason(hex('03 0004 73656c66 07 0000 0000 09'))).toBe('amf_bad_reference'); // {self: itself}
    // The same through AMF3's object and string tables: [s, s] by string reference, then arrays of references to it.
    const amf3Bomb = Buffer.concat([
      hex('11 09 05 01 06 87 a9 41'), // dense array of 2, its first element a 60000-byte string
      Buffer.alloc(60_000, 0x78),
      hex('06 00'), // the same string by reference
      hex('11 09 05 01 09 00 09 00'), // [array 0, array 0]
      hex('11 09 05 01 09 02 09 02'), // [array 1, array 1]
    ]);
    expect(reason(amf3Bomb)).toBe('amf_too_large');
    expect(reason(hex('11 0a 0b 01 09 73656c66 0a 00 01'))).toBe('amf_bad_reference'); // AMF3 {self: itself}
  });

  it('refuses a message that decodes to more values than any client sends', () => {
    const emptyObjects = (count: number) =>
      Buffer.concat([hex(`0a ${count.toString(16).padStart(8, '0')}`), Buffer.alloc(count * 4).fill(hex('03 0000 09'))]);
    expect(decodeAmf0(emptyObjects(AMF_MAX_VALUES - 1))[0]).toHaveLength(AMF_MAX_VALUES - 1); // with the array itself
    expect(() => decodeAmf0(emptyObjects(AMF_MAX_VALUES))).toThrow(expect.objectContaining({ reason: 'amf_too_large' }));
  });

  it('bounds nesting depth', () => {
    const deep = Buffer.concat([...Array.from({ length: 100 }, () => hex('0a 00000001')), hex('05')]);
    expect(() => decodeAmf0(deep)).toThrow(RtmpProtocolError);
  });

  it('never throws anything but RtmpProtocolError on corrupted bytes', () => {
    const random = prng(7);
    const good = encodeAmf0(
      'connect',
      1,
      { app: 'live', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://x/live', caps: [1, 2, { a: 'b' }] },
      new EcmaArray({ w: 1 }),
    );
    for (let i = 0; i < 3000; i++) {
      const bad = Buffer.from(good);
      for (let j = 0; j < 1 + (i % 5); j++) bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256);
      const cut = bad.subarray(0, Math.floor(random() * (bad.length + 1)));
      try {
        new Amf0Reader(cut).readAll();
      } catch (err) {
        expect(err).toBeInstanceOf(RtmpProtocolError);
      }
    }
  });
});
