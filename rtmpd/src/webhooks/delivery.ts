// Webhook delivery: every URL has its own queue of events, sent one request
// at a time in the order the events happened. A network error, a timeout, a
// 5xx or a 429 is retried after an exponential, jittered backoff; any other
// answer is final. An event is given up after --webhook-max-attempts tries or
// --webhook-max-age-seconds, and a full queue drops its oldest event. Nothing
// here is awaited by media: events are queued and the call returns.
import { randomUUID } from 'node:crypto';
import { sleep } from '../bounded-wait.ts';
import type { Logger } from '../telemetry/logger.ts';
import { redactHttpUrl } from '../telemetry/redact.ts';
import { webhookEventTypes, type WebhookEventType } from './options.ts';
import { signatureHeader } from './signature.ts';

/** What happened to one event at one URL: the `outcome` label of rtmpd_webhook_deliveries_total. */
export const DELIVERY_OUTCOMES = ['delivered', 'retried', 'failed', 'dropped'] as const;
type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

export type DeliveryCounts = Record<WebhookEventType, Record<DeliveryOutcome, number>>;

/** The limits, read at each use (they change with the config file). */
export interface DeliveryLimits {
  webhookTimeoutSeconds: number;
  webhookMaxAttempts: number;
  webhookMaxAgeSeconds: number;
  webhookQueueMaxEvents: number;
}

/** Time and chance, injected so tests can drive the backoff. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  random(): number;
}

const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
  random: Math.random,
};

/** One HTTP attempt: the status answered, or why there was none. */
export type SendResult = { status: number } | { error: string };
export type Send = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<SendResult>;

/** POSTs with fetch; the answer's body is not read. */
const httpSend: Send = async (url, headers, body, timeoutMs, signal) => {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]),
    });
    await response.body?.cancel();
    return { status: response.status };
  } catch (err) {
    return { error: (err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (err as Error).message };
  }
};

/** An event ready to send: its body is fixed, so every attempt signs the same bytes. */
export interface OutgoingEvent {
  /** The webhook-id header: the same for every attempt and every URL, so receivers can de-duplicate. */
  id: string;
  type: WebhookEventType;
  body: string;
  /** When it happened (ms since the epoch). */
  at: number;
}

export const newEventId = (): string => `evt_${randomUUID().replace(/-/g, '')}`;

/** Backoff before retry `attempt` (1 = the first retry): 1 s doubling to 5 min, each drawn from its upper half. */
const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 300_000;
export function backoffMs(attempt: number, random: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}

export interface WebhookDeliveryOptions {
  limits: DeliveryLimits;
  /** The signing keys now (they follow --webhook-secret-file); none: unsigned. */
  keys: () => readonly Buffer[];
  logger: Logger;
  clock?: Clock;
  send?: Send;
  /** An event reached a URL, `seconds` after it happened. */
  onDelivered?: (seconds: number) => void;
}

/** Why an event is given up when rtmpd stops: counted, and summed in close()'s one log line. */
const STOPPED = 'rtmpd stopped';

const retryable = (result: SendResult): boolean => !('status' in result) || result.status >= 500 || result.status === 429;
const describe = (result: SendResult): string => ('status' in result ? `answered ${result.status}` : result.error);

export class WebhookDelivery {
  readonly counts: DeliveryCounts;
  private readonly o: WebhookDeliveryOptions;
  private readonly clock: Clock;
  private readonly send: Send;
  private readonly queues = new Map<string, UrlQueue>();
  /** Aborted when the shutdown grace is over: sleeps and requests in flight end. */
  private readonly stopping = new AbortController();
  private deadline = Infinity;

  constructor(options: WebhookDeliveryOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.send = options.send ?? httpSend;
    this.counts = Object.fromEntries(
      webhookEventTypes.map((type) => [type, { delivered: 0, retried: 0, failed: 0, dropped: 0 }]),
    ) as DeliveryCounts;
  }

  /** Events waiting or in flight, over all URLs. */
  get queued(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.size;
    return n;
  }

  /** Queues the event for each URL; returns at once. */
  enqueue(event: OutgoingEvent, urls: readonly string[]): void {
    if (this.stopping.signal.aborted) {
      for (const url of urls) this.give(event, url, 'failed', 0, STOPPED);
      return;
    }
    for (const url of urls) {
      let queue = this.queues.get(url);
      if (!queue) {
        queue = new UrlQueue(url, this);
        this.queues.set(url, queue);
      }
      queue.push(event);
    }
  }

  /**
   * Shutdown: what is queued gets until `graceMs` from now (no retry is
   * waited for past it), then whatever is left is given up, in one log line.
   */
  async close(graceMs: number): Promise<void> {
    this.deadline = this.clock.now() + graceMs;
    const idle = Promise.all([...this.queues.values()].map((queue) => queue.idle()));
    await Promise.race([idle, this.clock.sleep(graceMs, this.stopping.signal)]);
    const left = this.queued;
    this.stopping.abort();
    await idle;
    if (left > 0) this.o.logger.warn({ events: left }, 'webhooks: events not delivered before shutdown were given up');
  }

  /** Delivers one event to one URL: tries until it is answered for good, runs out of tries or time, or rtmpd stops. */
  async deliver(event: OutgoingEvent, url: string): Promise<void> {
    const { limits } = this.o;
    const signal = this.stopping.signal;
    for (let attempt = 1; ; attempt++) {
      const timestamp = Math.floor(this.clock.now() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'flux-rtmpd',
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
      };
      const keys = this.o.keys();
      if (keys.length > 0) headers['webhook-signature'] = signatureHeader(keys, event.id, timestamp, event.body);
      const result = await this.send(url, headers, event.body, limits.webhookTimeoutSeconds * 1000, signal);
      if ('status' in result && result.status >= 200 && result.status < 300) {
        this.counts[event.type].delivered++;
        this.o.onDelivered?.((this.clock.now() - event.at) / 1000);
        return;
      }
      if (signal.aborted) return this.give(event, url, 'failed', attempt, STOPPED);
      if (!retryable(result)) return this.give(event, url, 'failed', attempt, describe(result));
      if (attempt >= limits.webhookMaxAttempts) return this.give(event, url, 'failed', attempt, `${describe(result)}; no tries left`);
      const wait = backoffMs(attempt, this.clock.random());
      const retryAt = this.clock.now() + wait;
      if (retryAt > event.at + limits.webhookMaxAgeSeconds * 1000)
        return this.give(event, url, 'failed', attempt, `${describe(result)}; older than --webhook-max-age-seconds by the next try`);
      if (retryAt > this.deadline) return this.give(event, url, 'failed', attempt, `${describe(result)}; rtmpd is stopping`);
      this.counts[event.type].retried++;
      this.o.logger.debug({ id: event.id, type: event.type, url: redactHttpUrl(url), attempt, waitMs: Math.round(wait) }, describe(result));
      await this.clock.sleep(wait, signal);
      if (signal.aborted) return this.give(event, url, 'failed', attempt, STOPPED);
    }
  }

  /** An event that will not reach a URL: counted, and logged once. */
  give(event: OutgoingEvent, url: string, outcome: 'failed' | 'dropped', attempts: number, why: string): void {
    this.counts[event.type][outcome]++;
    // Shutdown's give-ups are summed in one line by close().
    if (why === STOPPED) return;
    this.o.logger.warn(
      { id: event.id, type: event.type, url: redactHttpUrl(url), attempts, why },
      outcome === 'dropped' ? 'webhook event dropped: the queue is full' : 'webhook event not delivered',
    );
  }

  /** The queue limit now. */
  get maxQueued(): number {
    return this.o.limits.webhookQueueMaxEvents;
  }
}

/** One URL's events: a FIFO with one delivery at a time. */
class UrlQueue {
  private readonly url: string;
  private readonly delivery: WebhookDelivery;
  private waiting: OutgoingEvent[] = [];
  private head = 0;
  private running: Promise<void> | undefined;

  constructor(url: string, delivery: WebhookDelivery) {
    this.url = url;
    this.delivery = delivery;
  }

  /** Waiting, plus the one in flight. */
  get size(): number {
    return this.waiting.length - this.head + (this.running ? 1 : 0);
  }

  push(event: OutgoingEvent): void {
    this.waiting.push(event);
    // The oldest waiting event makes room; the one in flight keeps going.
    while (this.waiting.length - this.head > this.delivery.maxQueued) {
      this.delivery.give(this.waiting[this.head]!, this.url, 'dropped', 0, 'queue full');
      this.head++;
    }
    this.running ??= this.run();
  }

  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(): Promise<void> {
    while (this.head < this.waiting.length) {
      const event = this.waiting[this.head]!;
      this.head++;
      // Compacted now and then, so a long-lived queue does not keep delivered events.
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      await this.delivery.deliver(event, this.url);
    }
    this.running = undefined;
  }
}
