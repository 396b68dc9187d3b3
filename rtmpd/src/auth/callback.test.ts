import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sleep, until } from '../../test/support/wait.ts';
import { CallbackClient, type CallbackRequest } from './callback.ts';

/** The authorization service, as a real HTTP server in the test process. */
async function service(answer: (body: Record<string, unknown>, res: ServerResponse) => void) {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      bodies.push(body);
      answer(body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rtmp/auth`, bodies };
}

const request = (over: Partial<CallbackRequest> = {}): CallbackRequest => ({
  action: 'publish',
  app: 'live',
  key: 'cam1',
  query: 'token=abc',
  clientIp: '127.0.0.1',
  protocol: 'rtmp',
  tls: false,
  signal: new AbortController().signal,
  ...over,
});

// The deadline of a client whose service answers at once: what these tests look
// at is the answer, not the deadline (the timeout test has its own), and a loaded
// machine took more than a second to run a local service's answer.
const ANSWER_TIMEOUT_MS = 10_000;

describe('callback', () => {
  it('posts the request and follows the answer: 2xx allows, 401/403 refuse, and answers are cached', async () => {
    const { url, bodies } = await service((body, res) => {
      res.statusCode = body.key === 'cam1' ? 204 : 403;
      res.end();
    });
    const client = new CallbackClient(() => url, { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 60 });
    expect(await client.ask(request())).toEqual({ verdict: 'ok' });
    expect(bodies[0]).toEqual({
      action: 'publish',
      app: 'live',
      key: 'cam1',
      query: 'token=abc',
      client_ip: '127.0.0.1',
      protocol: 'rtmp',
      tls: false,
    });
    expect(await client.ask(request({ key: 'cam2' }))).toEqual({ verdict: 'callback_denied' });
    expect(await client.ask(request())).toEqual({ verdict: 'ok' });
    expect(await client.ask(request({ key: 'cam2' }))).toEqual({ verdict: 'callback_denied' });
    expect(bodies).toHaveLength(2); // the repeats came from the cache
    const uncached = new CallbackClient(() => url, { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 0 });
    await uncached.ask(request());
    await uncached.ask(request());
    expect(bodies).toHaveLength(4);
  });

  it('fails (it does not allow) on a timeout, a server error or a service that is down', async () => {
    const slow = await service(() => {}); // never answers
    const started = Date.now();
    const timedOut = await new CallbackClient(() => slow.url, { timeoutMs: 300, cacheSeconds: 60 }).ask(request());
    expect(timedOut).toEqual({ verdict: 'callback_failed', detail: 'no answer in 300 ms' });
    expect(Date.now() - started).toBeLessThan(2000);
    const broken = await service((_body, res) => {
      res.statusCode = 500;
      res.end();
    });
    expect(await new CallbackClient(() => broken.url, { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 60 }).ask(request())).toEqual({
      verdict: 'callback_failed',
      detail: 'answered 500',
    });
    // Not a redirect (fetch refuses those), and not a yes: only 2xx allows.
    const ambiguous = await service((_body, res) => {
      res.statusCode = 300;
      res.end();
    });
    expect(await new CallbackClient(() => ambiguous.url, { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 60 }).ask(request())).toEqual({
      verdict: 'callback_failed',
      detail: 'answered 300',
    });
    const down = await new CallbackClient(() => 'http://127.0.0.1:1/auth', { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 60 }).ask(
      request(),
    );
    expect(down.verdict).toBe('callback_failed');
  });

  it('sends at most 64 requests at once, holds 1,024 more for their turn and refuses the next ones at once as callback_busy', async () => {
    const held: ServerResponse[] = [];
    let open = 0;
    let mostOpen = 0;
    const { url, bodies } = await service((_body, res) => {
      mostOpen = Math.max(mostOpen, ++open);
      res.once('finish', () => open--);
      res.statusCode = 204;
      held.push(res);
    });
    const client = new CallbackClient(() => url, { timeoutMs: 30_000, cacheSeconds: 60 });
    // Plays of keys the cache cannot hold, as a flood of HTTP-FLV requests would make them.
    const asked = Array.from({ length: 64 + 1024 + 10 }, (_, i) => client.ask(request({ action: 'play', key: `k${i}` })));
    const refused = await Promise.all(asked.slice(-10));
    expect(refused.map((r) => r.verdict)).toEqual(Array(10).fill('callback_busy'));
    await until(() => held.length === 64);
    await sleep(200);
    expect(bodies).toHaveLength(64);
    // The service answers: the waiting ones go out in turn, never more than 64 at once.
    let answering = true;
    void (async () => {
      while (answering) {
        held.splice(0).forEach((res) => res.end());
        await sleep(5);
      }
    })();
    const verdicts = await Promise.all(asked.slice(0, -10));
    answering = false;
    expect(verdicts.every((v) => v.verdict === 'ok')).toBe(true);
    expect(bodies).toHaveLength(64 + 1024);
    expect(mostOpen).toBe(64);
  }, 40_000);

  it('keeps at most 4 MiB of bodies, dropping the oldest, and still every answer to bodies of normal size', async () => {
    const { url, bodies } = await service((_body, res) => {
      res.statusCode = 204;
      res.end();
    });
    const client = new CallbackClient(() => url, { timeoutMs: ANSWER_TIMEOUT_MS, cacheSeconds: 60 });
    // 1,000 ordinary bodies: every one is kept.
    const ordinary = Array.from({ length: 1000 }, (_, i) => request({ key: `cam${i}` }));
    // Asked together (the client sends 64 at once): 1,000 asked one after another took
    // more than the test's 30 s on a loaded machine.
    await Promise.all(ordinary.map((r) => client.ask(r)));
    for (const r of ordinary) await client.ask(r);
    expect(bodies).toHaveLength(1000);
    // 40 bodies with a 60 KiB query (120 KiB each as V8 may hold them) pass 4 MiB: the first ones leave.
    const large = Array.from({ length: 40 }, (_, i) => request({ key: `big${i}`, query: `token=${'x'.repeat(60 * 1024)}` }));
    for (const r of large) await client.ask(r);
    expect(bodies).toHaveLength(1040);
    await client.ask(large[39]!);
    expect(bodies).toHaveLength(1040); // the newest is still kept
    await client.ask(large[0]!);
    expect(bodies).toHaveLength(1041); // the oldest was dropped: asked again
  });
});
