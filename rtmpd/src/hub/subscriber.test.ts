import { describe, expect, it } from 'vitest';
import { MediaPacket, PacketFlag } from './packet.ts';
import { DeliveryGate } from './subscriber.ts';

const video = (keyframe: boolean) => new MediaPacket('video', 0, Buffer.alloc(10), 0, keyframe ? PacketFlag.keyframe : 0);
const audio = () => new MediaPacket('audio', 0, Buffer.alloc(10), 0);
const frameAt = (timestamp: number, keyframe = false) =>
  new MediaPacket('video', timestamp, Buffer.alloc(10), 0, keyframe ? PacketFlag.keyframe : 0);

/** A gate and the queue it guards, offered a 10-byte video frame at a time; the socket takes what the test says. */
function timedQueue(maxQueueMs: number) {
  const gate = new DeliveryGate(1 << 30, maxQueueMs, 0);
  let pending = 0;
  return {
    gate,
    take: (bytes: number) => (pending -= bytes),
    get pending() {
      return pending;
    },
    offer(timestamp: number, keyframe = false): boolean {
      const frame = frameAt(timestamp, keyframe);
      if (!gate.admit(frame, pending, true)) return false;
      gate.wrote(frame);
      pending += frame.body.length;
      return true;
    },
  };
}

describe('DeliveryGate', () => {
  it('admits everything while the queue is under the bound', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    expect([video(true), video(false), audio()].map((p) => gate.admit(p, 50, true))).toEqual([true, true, true]);
    expect(gate.dropped).toBe(0);
  });

  it('skips to the next keyframe once the queue passes the bound', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    expect(gate.admit(video(false), 101, true)).toBe(false);
    expect(gate.admit(audio(), 10, true)).toBe(false); // still skipping: audio must not resume mid-GOP
    expect(gate.admit(video(false), 10, true)).toBe(false);
    expect(gate.admit(video(true), 80, true)).toBe(false); // keyframe, but queue not drained below half
    expect(gate.admit(video(true), 10, true)).toBe(true);
    expect(gate.admit(video(false), 10, true)).toBe(true);
    expect(gate.dropped).toBe(4);
  });

  it('holds decoder config and metadata back while skipping, and once the queue passes the bound', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    expect(gate.holdsConfig(100)).toBe(false);
    expect(gate.holdsConfig(101)).toBe(true);
    expect(gate.skipping).toBe(true);
    // Config that started the skip: media waits for a keyframe too.
    expect(gate.admit(video(false), 0, true)).toBe(false);
    expect(gate.holdsConfig(0)).toBe(true);
    expect(gate.admit(video(true), 0, true)).toBe(true);
    expect(gate.holdsConfig(0)).toBe(false);
  });

  it('lets a joining player drain the GOP it was sent before the bound applies, and shrinks that allowance as it drains', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    gate.allowBurst(1000);
    expect(gate.admit(video(false), 1050, true)).toBe(true);
    expect(gate.admit(video(false), 1101, true)).toBe(false);
    const drained = new DeliveryGate(100, Infinity, 0);
    drained.allowBurst(1000);
    expect(drained.admit(video(false), 300, true)).toBe(true);
    expect(drained.admit(video(false), 401, true)).toBe(false);
  });

  it('resumes an audio-only stream once the queue has drained', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    expect(gate.admit(audio(), 200, false)).toBe(false);
    expect(gate.admit(audio(), 30, false)).toBe(false);
    expect(gate.admit(audio(), 0, false)).toBe(true);
  });

  it('measures how long a queue has not moved', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    gate.queued = 50;
    expect(gate.stuckFor(50, 1000, 0)).toBe(1000);
    expect(gate.stuckFor(40, 2000, 0)).toBe(0); // the socket took bytes
    expect(gate.stuckFor(40, 5000, 0)).toBe(3000);
    gate.queued += 30; // more queued, nothing taken: a growing queue is no progress
    expect(gate.stuckFor(70, 6000, 0)).toBe(4000);
    expect(gate.stuckFor(0, 7000, 0)).toBe(0);
  });

  it('counts a reader that takes less than the minimum as stuck, however often it takes a byte', () => {
    const gate = new DeliveryGate(100, Infinity, 0);
    let pending = 0;
    const stuck: number[] = [];
    for (let second = 1; second <= 10; second++) {
      gate.queued += 100;
      pending += 100 - 10; // the socket takes 10 bytes a second
      stuck.push(gate.stuckFor(pending, second * 1000, 50));
    }
    // 50 bytes taken every five seconds, no faster: progress then, stuck in between.
    expect(stuck).toEqual([1000, 2000, 3000, 4000, 0, 1000, 2000, 3000, 4000, 0]);
    const fast = new DeliveryGate(100, Infinity, 0);
    fast.queued = 1000;
    expect([1, 2, 3].map((s) => fast.stuckFor(1000 - 60 * s, s * 1000, 50))).toEqual([0, 0, 0]);
  });

  it("skips once the queue's oldest unsent media is more than the time bound behind the newest, far under the byte bound", () => {
    const queue = timedQueue(1000);
    const sent = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000].map((t) => queue.offer(t));
    expect(sent.every(Boolean)).toBe(true); // 1 s behind: at the bound, not past it
    expect(queue.offer(1100)).toBe(false);
    expect(queue.gate.skipping).toBe(true);
    // The socket takes the frames up to 700 ms: 800 ms and on are left, 600 ms behind a keyframe at 1400.
    queue.take(80);
    expect(queue.offer(1400, true)).toBe(false); // more than half the bound behind: still skipping
    expect(queue.offer(1200, true)).toBe(true); // 400 ms behind
    expect(queue.gate.dropped).toBe(2);
  });

  it('never skips a reader that keeps up, however long the stream', () => {
    const queue = timedQueue(1000);
    for (let t = 0; t < 60_000; t += 40) {
      expect(queue.offer(t, t % 2000 === 0)).toBe(true);
      queue.take(10);
    }
  });

  it("measures from a joiner's first live frame, not from the GOP it was sent on joining", () => {
    const queue = timedQueue(1000);
    // A burst of a 4 s GOP, still queued: not counted against the time bound.
    queue.gate.queued += 400;
    queue.take(-400);
    queue.gate.allowBurst(400);
    expect([4000, 4500, 5000].map((t) => queue.offer(t))).toEqual([true, true, true]);
    expect(queue.offer(5100)).toBe(false); // the first live frame, 4000, is now 1.1 s behind
  });

  it('keeps to the bound when a queue that never drains has passed through many marks', () => {
    const queue = timedQueue(1000);
    const held = 15; // frames left queued after each: 600 ms behind the next, under the bound by more than a stretch
    let t = 0;
    for (; t < 60_000; t += 40) {
      expect(queue.offer(t)).toBe(true);
      queue.take(Math.max(0, queue.pending - held * 10));
    }
    // The reader stops: its oldest unsent frame stays where it was, and the newest moves on.
    const oldestUnsent = t - held * 40;
    const giveUpAt = t + 10_000;
    while (t < giveUpAt && queue.offer(t)) t += 40;
    // Refused once it is more than the bound behind, and not while it is under by more than a stretch (125 ms).
    expect(t - oldestUnsent).toBeGreaterThan(1000 - 125);
    expect(t - oldestUnsent).toBeLessThanOrEqual(1000 + 40);
  });

  it('starts again from a queue that drained, and from a timestamp that went back', () => {
    const queue = timedQueue(1000);
    expect(queue.offer(0)).toBe(true);
    queue.take(10);
    expect(queue.offer(5000)).toBe(true); // the queue was empty: nothing is behind
    expect(queue.offer(100)).toBe(true); // the publisher's clock went back: its own stretch
    queue.take(10);
    expect(queue.offer(900)).toBe(true);
    expect(queue.offer(1200)).toBe(false);
  });
});
