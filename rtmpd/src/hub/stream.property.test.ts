// A publisher's garbage is the stream's to tolerate: whatever audio, video
// and metadata bodies arrive, in whatever order, pushing them never throws,
// every byte is counted, and a player joining at any point is written to.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';
import { fixtureTags, mutated } from '../../test/support/mutations.ts';
import { Stream } from './stream.ts';

const tags = fixtureTags();
const publisher = { protocol: 'rtmp' as const, remoteAddress: '127.0.0.1:1', close: () => {} };

describe('Stream properties', () => {
  it('takes any sequence of audio, video and data bodies without throwing', () => {
    const body = (kind: string) => mutated(tags.filter((t) => t.kind === kind).map((t) => t.body));
    const message = fc.oneof(
      fc.tuple(fc.constant('video' as const), body('video')),
      fc.tuple(fc.constant('audio' as const), body('audio')),
      fc.tuple(
        fc.constant('data' as const),
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      ),
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 60 }), fc.nat({ max: 60 }), (messages, joinAt) => {
        const stream = new Stream('live', 'fuzz', publisher, { gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 64 * 1024 });
        const player = new FakeSubscriber('rtmp');
        messages.forEach(([kind, b], i) => {
          if (i === joinAt) stream.subscribe(player, 0);
          if (kind === 'video') stream.pushVideo(i * 40, b, 0);
          else if (kind === 'audio') stream.pushAudio(i * 40, b, 0);
          else stream.setMetadata(i * 40, b, {}, 0);
        });
        expect(stream.stats.bytesIn).toBe(messages.reduce((sum, [, b]) => sum + b.length, 0));
        if (joinAt < messages.length) expect(player.began).toBe(stream);
        stream.end('unpublished');
      }),
      { numRuns: 1000 },
    );
  });
});
