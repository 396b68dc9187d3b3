// What the fuzzer feeds: the bytes a client sends after the handshake, read
// by the chunk reader and every message handed to the parser the server
// would use (commands, data, user control, aggregates) and media to a live
// stream with a player on it. The errors a client may cause are
// RtmpProtocolError and MediaParseError; anything else is a finding.
import { MediaParseError } from '../../src/codec/errors.ts';
import { Stream } from '../../src/hub/stream.ts';
import { splitAggregate } from '../../src/rtmp/wire/aggregate.ts';
import { ChunkReader } from '../../src/rtmp/wire/chunk-reader.ts';
import { parseCommand, parseData } from '../../src/rtmp/wire/commands.ts';
import { parseUserControl, readControlValue } from '../../src/rtmp/wire/control.ts';
import { RtmpProtocolError } from '../../src/rtmp/wire/errors.ts';
import { MessageType } from '../../src/rtmp/wire/message-types.ts';
import { FakeSubscriber } from '../support/fake-subscriber.ts';

const publisher = { protocol: 'rtmp' as const, remoteAddress: '127.0.0.1:1', close: () => {} };

/** Whether `err` is one a client's bytes may rightly cause. */
export const expectedError = (err: unknown): boolean => err instanceof RtmpProtocolError || err instanceof MediaParseError;

/** Feeds one session's bytes, cut into reads at the sizes its own first byte picks. */
export function feedSession(bytes: Buffer): void {
  const stream = new Stream('live', 'fuzz', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 256 * 1024 });
  stream.subscribe(new FakeSubscriber('rtmp'), 0);
  const media = (typeId: number, timestamp: number, body: Buffer): void => {
    if (typeId === MessageType.audio) stream.pushAudio(timestamp, body, 0);
    else if (typeId === MessageType.video) stream.pushVideo(timestamp, body, 0);
  };
  const reader = new ChunkReader(
    (typeId, _streamId, timestamp, body) => {
      switch (typeId) {
        case MessageType.commandAmf0:
        case MessageType.commandAmf3:
          parseCommand(typeId, body);
          break;
        case MessageType.dataAmf0:
        case MessageType.dataAmf3:
          stream.setMetadata(timestamp, body, Object.fromEntries(parseData(typeId, body).entries()), 0);
          break;
        case MessageType.userControl:
          parseUserControl(body);
          break;
        case MessageType.windowAckSize:
        case MessageType.acknowledgement:
          readControlValue(body, 'control value');
          break;
        case MessageType.aggregate:
          splitAggregate(body, timestamp, media);
          break;
        default:
          media(typeId, timestamp, body);
      }
    },
    { maxMessageBytes: 1 << 20, maxPartialBytes: 2 << 20, borrowBodies: true },
  );
  const read = 1 + ((bytes[0] ?? 0) % 4) * 700;
  for (let at = 0; at < bytes.length; at += read) reader.push(bytes.subarray(at, at + read));
  stream.end('unpublished');
}
