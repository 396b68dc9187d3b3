import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';
import { consoleRoutes } from './console.ts';
import { jsonErrors } from './errors.ts';
import { listenHttp, type HttpServer } from './server.ts';

const logger = pino({ level: 'silent' });
const settings = () => ({ rtmp_port: 1935, rtmps_port: null, http_port: 8082, https_port: 8443, recordings: false, snapshots: true });
const script = `console.log(${JSON.stringify('x'.repeat(2000))});`;
let bundle: string;
let server: HttpServer | undefined;

beforeAll(async () => {
  bundle = await mkdtemp(join(tmpdir(), 'rtmpd-console-'));
  await writeFile(join(bundle, 'index.html'), '<!doctype html><script type="module" src="console/app-ABCDEF23.js"></script>');
  await writeFile(join(bundle, 'app-ABCDEF23.js'), script);
});

afterEach(async () => {
  await server?.close(100);
  server = undefined;
});

/** The console in front of a stand-in for the rest of the app, which answers what the console passes on. */
async function serve(dir: string) {
  const app = new Koa();
  app.use(jsonErrors(logger));
  app.use(consoleRoutes({ settings, logger, dir }).routes());
  app.use((ctx) => {
    if (ctx.path.endsWith('.flv')) ctx.body = 'flv';
  });
  app.silent = true;
  server = await listenHttp(app, { ...parseConfig({}), httpBind: '127.0.0.1:0' });
  return (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${server!.address().port}${path}`, init);
}

describe('console routes', () => {
  it('serves the page at / with a content security policy, revalidated on every load', async () => {
    const get = await serve(bundle);
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await res.text()).toContain('app-ABCDEF23.js');
    const again = await get('/', { headers: { 'If-None-Match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('serves content-hashed scripts gzipped and cached for good', async () => {
    const get = await serve(bundle);
    const res = await get('/console/app-ABCDEF23.js', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(Number(res.headers.get('content-length'))).toBeLessThan(script.length / 10);
    expect(await res.text()).toBe(script); // fetch decodes it
    const plain = await get('/console/app-ABCDEF23.js', { headers: { 'Accept-Encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(Number(plain.headers.get('content-length'))).toBe(script.length);
  });

  it('tells the page the ports of the listeners and which optional panels have an API behind them', async () => {
    const get = await serve(bundle);
    const res = await get('/console/settings.json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(settings());
  });

  it('passes every other path on: a stream of the app "console" still plays, unknown files are JSON 404s', async () => {
    const get = await serve(bundle);
    expect(await (await get('/console/cam.flv')).text()).toBe('flv');
    const missing = await get('/console/nothing.js');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /console/nothing.js' } });
    expect((await get('/', { method: 'POST' })).status).toBe(404);
  });

  it('answers 503 with the fix when the bundle was never built', async () => {
    const get = await serve(await mkdtemp(join(tmpdir(), 'rtmpd-console-empty-')));
    const res = await get('/');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'console_not_built',
      message: expect.stringContaining('make build'),
    });
  });
});
