// GET /ready once rtmpd is stopping. Its own listener stops taking connections
// as the stop begins (a fleet pod's keeps serving through the hand-over, see
// e2e/fleet), so the app rtmpd serves is asked here through a listener of the
// test's own, which the stop does not close.
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type Koa from 'koa';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startRtmpd } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { tempDir } from './support/processes.ts';

const servers: Server[] = [];
let dir: string | undefined;

afterAll(async () => {
  for (const server of servers) server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A listener of the test's own over `app`; its base URL. */
async function serve(app: Koa): Promise<string> {
  const server = createServer(app.callback());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('readiness while rtmpd stops', () => {
  it('answers /ready 503 "draining" from the moment the stop begins, /health still 200', async () => {
    dir = await tempDir('rtmpd-readiness-');
    const { config } = loadConfig([
      ...['--rtmp-bind', '127.0.0.1:0', '--http-bind', '127.0.0.1:0', '--recording-enabled', 'false'],
      ...['--storage-dir', join(dir, 'storage'), '--keyframe-dir', join(dir, 'keyframes')],
    ]);
    const rtmpd = await startRtmpd(config, pino({ level: 'silent' }));
    const base = await serve(rtmpd.httpApp);
    expect((await fetch(`${base}/ready`)).status).toBe(200);

    const stopped = rtmpd.stop();
    const ready = await fetch(`${base}/ready`);
    expect([ready.status, await ready.text()]).toEqual([503, 'draining']);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    await stopped;
  });
});
