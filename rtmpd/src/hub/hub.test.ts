import { afterEach, describe, expect, it } from 'vitest';
import { PublishRefused, StreamHub } from './hub.ts';
import { invalidStreamName } from './names.ts';
import type { PublisherInfo } from './stream.ts';
import type { CloseReason } from './subscriber.ts';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';

const hubs: StreamHub[] = [];
const newHub = () => {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 50 });
  hubs.push(hub);
  return hub;
};
afterEach(() => hubs.splice(0).forEach((hub) => hub.closeAll()));

const publisher = (): PublisherInfo & { closed: CloseReason[] } => {
  const closed: CloseReason[] = [];
  return { protocol: 'rtmp', remoteAddress: '127.0.0.1', closed, close: (reason) => closed.push(reason) };
};

describe('StreamHub', () => {
  it('gives a live key to one publisher and refuses a second with BadName', () => {
    const hub = newHub();
    const stream = hub.publish('live', 'cam1', publisher());
    expect(stream.id).toBe('rtmp/live/cam1');
    expect(() => hub.publish('live', 'cam1', publisher())).toThrow(PublishRefused);
    expect(hub.byId('rtmp/live/cam1')).toBe(stream);
    hub.unpublish(stream);
    expect(hub.get('live', 'cam1')).toBeUndefined();
    expect(hub.publish('live', 'cam1', publisher())).not.toBe(stream);
  });

  it("leaves the key's next publisher live when an earlier one's unpublish comes late", () => {
    const hub = newHub();
    const first = hub.publish('live', 'cam1', publisher());
    hub.unpublish(first);
    const next = hub.publish('live', 'cam1', publisher());
    const unpublished: unknown[] = [];
    hub.on('unpublish', (s) => unpublished.push(s));
    hub.unpublish(first);
    expect(hub.get('live', 'cam1')).toBe(next);
    expect(unpublished).toEqual([]);
  });

  it('refuses unsafe and reserved names', () => {
    const hub = newHub();
    for (const [app, key] of [
      ['live', '../etc'],
      ['api', 'x'],
      ['health', 'x'],
      ['metrics', 'x'],
      ['live', ''],
      ['live', '.hidden'],
      ['li ve', 'x'],
      ['live', 'a'.repeat(129)],
    ] as const) {
      expect(() => hub.publish(app, key, publisher()), `${app}/${key}`).toThrow(PublishRefused);
    }
    expect(invalidStreamName('live', 'test_123-a.b')).toBeUndefined();
    expect(invalidStreamName('a'.repeat(128), 'b'.repeat(128))).toBeUndefined();
  });

  it('tells players and emits unpublish when the publisher leaves', async () => {
    const hub = newHub();
    const stream = hub.publish('live', 'k', publisher());
    const player = new FakeSubscriber();
    expect(await hub.subscribe('live', 'k', player, 0)).toBe(stream);
    const gone: string[] = [];
    hub.on('unpublish', (s) => gone.push(s.id));
    hub.unpublish(stream);
    expect(player.closed).toEqual(['unpublished']);
    expect(gone).toEqual(['rtmp/live/k']);
    expect(stream.subscriberCount).toBe(0);
  });

  it('answers a player of an unknown key at once, or waits when asked to', async () => {
    const hub = newHub();
    expect(await hub.subscribe('live', 'later', new FakeSubscriber(), 0)).toBeUndefined();
    const waiting = hub.subscribe('live', 'later', new FakeSubscriber(), 5000);
    const stream = hub.publish('live', 'later', publisher());
    expect(await waiting).toBe(stream);
    expect(stream.subscriberCount).toBe(1);
    expect(await hub.subscribe('live', 'never', new FakeSubscriber(), 20)).toBeUndefined();
  });

  it('stops waiting when the player goes away', async () => {
    const hub = newHub();
    const abort = new AbortController();
    const waiting = hub.subscribe('live', 'x', new FakeSubscriber(), 60_000, abort.signal);
    abort.abort();
    expect(await waiting).toBeUndefined();
    // One that left before it asked (while it was authorized) is not kept waiting either.
    const left = hub.subscribe('live', 'x', new FakeSubscriber(), 60_000, AbortSignal.abort());
    expect(await Promise.race([left, new Promise((r) => setTimeout(() => r('still waiting'), 1000))])).toBeUndefined();
    expect(hub.awaited('rtmp/live/x')).toBe(false);
  });

  it('closes a player whose queue has not moved past the stall timeout', async () => {
    const hub = newHub();
    const stream = hub.publish('live', 'k', publisher());
    const stuck = new FakeSubscriber();
    stuck.pending = 1000;
    const healthy = new FakeSubscriber();
    await hub.subscribe('live', 'k', stuck, 0);
    await hub.subscribe('live', 'k', healthy, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stuck.closed).toEqual(['stalled']);
    expect(healthy.closed).toEqual([]);
    expect(stream.subscriberCount).toBe(1);
    expect(hub.stalledClosed).toBe(1);
  });

  it('closes a stalled forward without counting it as a stalled player', async () => {
    const hub = newHub();
    hub.publish('live', 'k', publisher());
    const forward = new FakeSubscriber('forward');
    forward.pending = 1000;
    await hub.subscribe('live', 'k', forward, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(forward.closed).toEqual(['stalled']);
    expect(hub.stalledClosed).toBe(0);
  });

  it('closes a stalled relay to another pod and counts it apart from stalled players', async () => {
    const hub = newHub();
    hub.publish('live', 'k', publisher());
    const relay = new FakeSubscriber('relay');
    relay.pending = 1000;
    await hub.subscribe('live', 'k', relay, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(relay.closed).toEqual(['stalled']);
    expect(hub.stalledClosed).toBe(0);
    expect(hub.relaysStalledClosed).toBe(1);
  });

  it('closes publishers on shutdown', () => {
    const hub = newHub();
    const pub = publisher();
    hub.publish('live', 'k', pub);
    hub.closeAll();
    expect(pub.closed).toEqual(['shutdown']);
    expect(hub.size).toBe(0);
  });
});
