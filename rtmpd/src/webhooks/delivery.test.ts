import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  BACKOFF_MAX_MS,
  WebhookDelivery,
  type Clock,
  type DeliveryLimits,
  type OutgoingEvent,
  type SendResult,
} from './delivery.ts';
import { parseSigningKeys } from './signature.ts';

/** A clock that moves only when the test says: sleeps resolve as time passes them. */
class ManualClock implements Clock {
  time = 1_700_000_000_000;
  readonly sleeps: number[] = [];
  private timers: { at: number; resolve: () => void }[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve) => {
      const timer = { at: this.time + ms, resolve };
      this.timers.push(timer);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
  random(): number {
    return 0.5;
  }
  /** Moves time on, waking each sleep it passes at its own time and letting the woken work run. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = next.at;
      next.resolve();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

interface Attempt {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A receiver scripted by answers; `hold` keeps requests open until released or aborted. */
function receiver(answers: (SendResult | 'hold')[]) {
  const attempts: Attempt[] = [];
  const held: ((r: SendResult) => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send = (url: string, headers: Record<string, string>, body: string, _timeoutMs: number, signal: AbortSignal) => {
    attempts.push({ url, headers, body });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    const done = (r: SendResult) => {
      inFlight--;
      return r;
    };
    if (answer !== 'hold') return Promise.resolve(done(answer));
    if (signal.aborted) return Promise.resolve(done({ error: 'aborted' }));
    return new Promise<SendResult>((resolve) => {
      held.push((r) => resolve(done(r)));
      signal.addEventListener('abort', () => resolve(done({ error: 'aborted' })), { once: true });
    });
  };
  return { send, attempts, held, maxInFlight: () => maxInFlight };
}

const limits = (over: Partial<DeliveryLimits> = {}): DeliveryLimits => ({
  webhookTimeoutSeconds: 5,
  webhookMaxAttempts: 8,
  webhookMaxAgeSeconds: 3600,
  webhookQueueMaxEvents: 1000,
  ...over,
});

function setup(answers: (SendResult | 'hold')[], over: Partial<DeliveryLimits> = {}, keys: Buffer[] = []) {
  const clock = new ManualClock();
  const r = receiver(answers);
  const warnings: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({ write: (chunk: Buffer, _e, done) => (warnings.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }),
  );
  const delivered: number[] = [];
  const delivery = new WebhookDelivery({
    limits: limits(over),
    keys: () => keys,
    logger,
    clock,
    send: r.send,
    onDelivered: (s) => delivered.push(s),
  });
  let n = 0;
  const event = (): OutgoingEvent => ({ id: `evt_${++n}`, type: 'stream.ended', body: `{"n":${n}}`, at: clock.now() });
  return { clock, delivery, warnings, delivered, event, ...r };
}

describe('webhook delivery', () => {
  it('retries 5xx with the same webhook-id until the receiver takes it, backing off between tries', async () => {
    const { clock, delivery, attempts, event, delivered } = setup([{ status: 500 }, { status: 500 }, { status: 200 }]);
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    expect(attempts).toHaveLength(1);
    await clock.advance(749); // the first retry waits 500-1000 ms (750 with this clock's chance)
    expect(attempts).toHaveLength(1);
    await clock.advance(1);
    expect(attempts).toHaveLength(2);
    await clock.advance(1500); // the second 1000-2000 ms
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.headers['webhook-id']))).toEqual(new Set(['evt_1']));
    expect(clock.sleeps).toEqual([750, 1500]);
    expect(delivery.counts['stream.ended']).toEqual({ delivered: 1, retried: 2, failed: 0, dropped: 0 });
    expect(delivered).toEqual([2.25]);
    expect(delivery.queued).toBe(0);
  });

  it('retries network errors and 429, but not other 4xx', async () => {
    const { clock, delivery, attempts, event, warnings } = setup([{ error: 'ECONNREFUSED' }, { status: 429 }, { status: 404 }]);
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    await clock.advance(750);
    await clock.advance(1500);
    await clock.advance(10_000);
    expect(attempts).toHaveLength(3);
    expect(delivery.counts['stream.ended']).toMatchObject({ delivered: 0, retried: 2, failed: 1 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ id: 'evt_1', attempts: 3, why: 'answered 404', msg: 'webhook event not delivered' });
  });

  it('gives up after --webhook-max-attempts, logging the event once', async () => {
    const { clock, delivery, attempts, event, warnings } = setup([{ status: 503 }], { webhookMaxAttempts: 3 });
    delivery.enqueue(event(), ['http://user:pw@a.test/hook?token=secret']);
    await settle();
    for (let i = 0; i < 10; i++) await clock.advance(60_000);
    expect(attempts).toHaveLength(3);
    expect(delivery.counts['stream.ended']).toMatchObject({ retried: 2, failed: 1 });
    expect(warnings).toHaveLength(1);
    // Credentials and query strings stay out of the log.
    expect(warnings[0]!.url).toBe('http://a.test/hook');
  });

  it('gives up an event whose next try would be older than --webhook-max-age-seconds', async () => {
    const { clock, delivery, attempts, event } = setup([{ status: 502 }], { webhookMaxAgeSeconds: 5 });
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    for (let i = 0; i < 10; i++) await clock.advance(5000);
    // Tries at 0, 0.75 s and 2.25 s; the next would be at 5.25 s.
    expect(attempts).toHaveLength(3);
    expect(delivery.counts['stream.ended']).toMatchObject({ retried: 2, failed: 1 });
  });

  it('sends one request at a time per URL, in order, and each URL gets every event', async () => {
    const { clock, delivery, attempts, event, held, maxInFlight } = setup(['hold']);
    for (let i = 0; i < 3; i++) delivery.enqueue(event(), ['http://a.test/1', 'http://b.test/2']);
    await settle();
    expect(delivery.queued).toBe(6);
    while (held.length > 0) {
      held.shift()!({ status: 204 });
      await clock.advance(0);
    }
    const bodies = (url: string) => attempts.filter((a) => a.url === url).map((a) => a.body);
    expect(bodies('http://a.test/1')).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(bodies('http://b.test/2')).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(maxInFlight()).toBe(2);
    expect(delivery.counts['stream.ended'].delivered).toBe(6);
    expect(delivery.queued).toBe(0);
  });

  it('a full queue drops its oldest waiting event, counted', async () => {
    const { clock, delivery, attempts, event, held } = setup(['hold'], { webhookQueueMaxEvents: 2 });
    for (let i = 0; i < 5; i++) delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    // One in flight, two waiting: 2 and 3 made room for 4 and 5.
    expect(delivery.queued).toBe(3);
    expect(delivery.counts['stream.ended'].dropped).toBe(2);
    while (held.length > 0) {
      held.shift()!({ status: 200 });
      await clock.advance(0);
    }
    expect(attempts.map((a) => a.body)).toEqual(['{"n":1}', '{"n":4}', '{"n":5}']);
  });

  it('signs each attempt per Standard Webhooks, with every key of the secret file', async () => {
    const keys = parseSigningKeys(new Map([['', '# rotation\nwhsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nplain-text-key\n']]));
    const { delivery, attempts, event } = setup([{ status: 200 }], {}, keys);
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    const { headers, body } = attempts[0]!;
    const signed = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`;
    const expected = [Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'), Buffer.from('plain-text-key')].map(
      (key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`,
    );
    expect(headers['webhook-signature']).toBe(expected.join(' '));
    expect(headers['webhook-timestamp']).toBe('1700000000');
    expect(headers['content-type']).toBe('application/json');
  });

  it('on close, delivers what it can within the grace, then gives the rest up in one line', async () => {
    const { clock, delivery, event, held, warnings } = setup(['hold']);
    for (let i = 0; i < 3; i++) delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    const closed = delivery.close(2000);
    held.shift()!({ status: 200 });
    await clock.advance(1000);
    expect(delivery.queued).toBe(2);
    await clock.advance(1000);
    await closed;
    expect(delivery.counts['stream.ended']).toMatchObject({ delivered: 1, failed: 2 });
    expect(warnings).toEqual([expect.objectContaining({ events: 2, msg: expect.stringContaining('given up') })]);
    delivery.enqueue(event(), ['http://a.test/hook']);
    expect(delivery.counts['stream.ended'].failed).toBe(3);
  });

  it('backs off from 1 s, doubling to 5 min, within the upper half of each step', () => {
    expect([backoffMs(1, 0), backoffMs(1, 1)]).toEqual([500, 1000]);
    expect([backoffMs(4, 0), backoffMs(4, 1)]).toEqual([4000, 8000]);
    expect(backoffMs(30, 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(30, 0)).toBe(BACKOFF_MAX_MS / 2);
  });

  it('refuses a secret file with no key', () => {
    expect(() => parseSigningKeys(new Map([['', '# nothing\n\n']]))).toThrow(/no usable key/);
    expect(() => parseSigningKeys(new Map([['a', 'x']]))).toThrow(/not a directory/);
    // A whsec_ line with nothing after the prefix would sign with an empty key, which anyone can compute.
    expect(() => parseSigningKeys(new Map([['', 'plain-text-key\nwhsec_\n']]))).toThrow(/no usable key/);
  });
});

describe('webhook delivery, final answers', () => {
  it('counts a redirect as not delivered and does not retry it: redirects are not followed', async () => {
    const { delivery, event, attempts, warnings } = setup([{ status: 302 }]);
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    expect(attempts).toHaveLength(1);
    expect(delivery.counts['stream.ended']).toMatchObject({ delivered: 0, retried: 0, failed: 1 });
    expect(warnings).toEqual([expect.objectContaining({ why: 'answered 302' })]);
  });

  it('on close, gives up at once an event whose next try would come after the grace', async () => {
    const { clock, delivery, event, held, warnings } = setup(['hold']);
    delivery.enqueue(event(), ['http://a.test/hook']);
    await settle();
    const closed = delivery.close(500);
    // The next try would be 750 ms away (backoff of the first failure, random 0.5).
    held.shift()!({ status: 503 });
    await settle();
    expect(delivery.counts['stream.ended']).toMatchObject({ retried: 0, failed: 1 });
    expect(warnings).toEqual([expect.objectContaining({ why: 'answered 503; rtmpd is stopping' })]);
    await clock.advance(500);
    await closed;
  });
});
