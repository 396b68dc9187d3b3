// The API's edge on its own, without the app around it: what a client is told
// for a repeated query parameter, that an error Koa may not show is a 500,
// and that a route whose access no check decides is refused, not served.
import Koa from 'koa';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { jsonErrors } from './errors.ts';
import { noQuery, queryParser, wholeNumber } from './query.ts';
import { routerFor, type RouteGroup } from './routing.ts';

/** An app whose `mount` runs behind jsonErrors, on a loopback port; the URL of `path` there. */
async function serve(mount: (app: Koa) => void): Promise<(path: string) => string> {
  const app = new Koa();
  app.silent = true;
  app.use(jsonErrors(pino({ level: 'silent' })));
  mount(app);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  onTestFinished(() => void server.close());
  return (path) => `http://127.0.0.1:${(server.address() as { port: number }).port}${path}`;
}

describe('queryParser', () => {
  it('says a valid parameter given twice is given more than once', () => {
    const parse = queryParser(z.object({ seconds: wholeNumber(1, 60).optional() }));
    expect(() => parse({ seconds: ['1', '2'] })).toThrow(
      expect.objectContaining({ status: 400, message: 'query parameter "seconds" is given more than once' }),
    );
    expect(parse({ seconds: '2' })).toEqual({ seconds: 2 });
  });
});

describe('jsonErrors', () => {
  it('answers a 4xx error that is not to be shown with a generic 500, never its message', async () => {
    const url = await serve((app) =>
      app.use(() => {
        throw Object.assign(new Error('the secret inside'), { status: 400, expose: false });
      }),
    );
    const res = await fetch(url('/'));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'internal_error', message: 'internal server error' } });
  });
});

describe('routerFor', () => {
  it('fails closed: a token route in an app that runs no access check answers 500, not its handler', async () => {
    const routes = {
      secret: {
        method: 'get',
        paths: ['/secret'],
        summary: 'a token route',
        access: 'token',
        query: noQuery,
        ok: { 200: { description: 'it', empty: true } },
      },
    } satisfies RouteGroup;
    const router = routerFor(routes, { secret: (ctx) => void (ctx.body = 'the secret') });
    const url = await serve((app) => app.use(router.routes()));
    const res = await fetch(url('/secret'));
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('the secret');
  });
});
