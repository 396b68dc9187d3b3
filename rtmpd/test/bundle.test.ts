// What the bundle (rtmpd/bundle.ts) changes in a running rtmpd: node:crypto,
// node:assert and node:zlib load on first use, not at start, as the API's
// route modules do (http/app.ts); undici (fetch)
// does not load when Koa answers JSON or streams HTTP-FLV; and Koa's
// Content-Types come out as with the whole of mime-db from the few entries the
// bundle keeps; a logged error's type is its name, not its minified class's, and its
// stack names rtmpd's sources, not the bundle. Runs against the bundle, as `make test` builds it first.
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverEntry, startServer, stopAll, type RunningServer } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { sleep } from './support/wait.ts';

const bundled = serverEntry().endsWith('rtmpd.js');
const dir = mkdtempSync(join(tmpdir(), 'rtmpd-bundle-'));
const modules = join(dir, 'modules.json');
// Each SIGUSR2 writes the built-in modules the server has loaded so far, and the URLs of the others.
const preload = join(dir, 'modules.mjs');
writeFileSync(
  preload,
  `import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
const urls = [];
registerHooks({ load: (url, context, next) => (urls.push(url), next(url, context)) });
process.on('SIGUSR2', () => writeFileSync(${JSON.stringify(modules)}, JSON.stringify([...process.moduleLoadList, ...urls])));
`,
);

const UNDICI = 'internal/deps/undici/undici';

let server: RunningServer;
beforeAll(async () => {
  // Not a skip: `make test` builds first, so a bundle missing or older than the sources here is a broken build.
  if (!bundled) throw new Error('rtmpd/dist/bundle is missing or older than rtmpd/src: run make build first');
  server = await startServer([], { RTMPD_NODE_FLAGS: `--import ${preload}` });
});
afterAll(async () => {
  await server?.stop();
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});

async function loadedModules(): Promise<string[]> {
  rmSync(modules, { force: true });
  server.child.kill('SIGUSR2');
  let list: string[] | undefined;
  for (const deadline = Date.now() + 10_000; list === undefined && Date.now() < deadline; await sleep(20))
    list = await readFile(modules, 'utf8').then(
      (text) => JSON.parse(text) as string[],
      () => undefined,
    );
  if (list === undefined) throw new Error('the server did not list its modules');
  return list.flatMap((entry) =>
    entry.startsWith('NativeModule ') ? [entry.slice('NativeModule '.length)] : entry.startsWith('file:') ? [basename(entry)] : [],
  );
}

/** The bundle's chunk of the API's routers (http/api.ts), which http/app.ts imports at the API's first request. */
const API_CHUNK = /^api-\w+\.js$/;

describe('the bundled rtmpd', () => {
  it("loads node:crypto, node:assert, node:zlib and the API's route modules only when it first needs them, and never undici", async () => {
    const idle = await loadedModules();
    expect(idle).toContain('net');
    expect(idle).toContain('main.js');
    for (const lazy of ['crypto', 'assert', 'zlib', UNDICI]) expect(idle).not.toContain(lazy);
    expect(idle.filter((file) => API_CHUNK.test(file))).toEqual([]);
    // The RTMP handshake signs with HMAC-SHA256; Koa asserts on each response's status.
    const publisher = await RtmpClient.connect(server.rtmpUrl('live', 'bundle'));
    await publisher.publish();
    publisher.sendAudio(0, Buffer.from([0xaf, 0x00, 0x12, 0x10]));
    expect((await fetch(server.httpUrl('/api/v1/rtmp/streams'))).status).toBe(200);
    // Koa streams an HTTP-FLV body, which it asks whether it is a fetch Response.
    const player = await fetch(server.httpUrl('/live/bundle.flv'));
    expect(player.status).toBe(200);
    const reader = player.body!.getReader();
    expect((await reader.read()).value?.subarray(0, 3)).toEqual(new Uint8Array(Buffer.from('FLV')));
    await reader.cancel();
    publisher.close();
    const used = await loadedModules();
    expect(used).toContain('crypto');
    expect(used).toContain('assert');
    expect(used).not.toContain(UNDICI);
    expect(used.filter((file) => API_CHUNK.test(file))).toHaveLength(1);
  });

  it('logs an error by its type, not by the name the minifier gave its class, and its stack by the source files and lines', async () => {
    const publisher = await RtmpClient.connect(server.rtmpUrl('live', 'broken'));
    await publisher.publish();
    // An AVC sequence header whose avcC announces a 0x50-byte SPS and ends, then an IDR frame.
    publisher.sendVideo(0, Buffer.from([0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x50, 0x67]));
    publisher.sendVideo(40, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x10]));
    let status = 404;
    for (const deadline = Date.now() + 10_000; status === 404 && Date.now() < deadline; await sleep(50))
      status = (await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fbroken/snapshot'))).status;
    publisher.close();
    expect(status).toBe(503);
    const failed = server.logs.find((line) => line.msg === 'snapshot decode failed');
    expect(failed?.err).toMatchObject({ type: 'MediaParseError' });
    const frames = (failed!.err as { stack: string }).stack.split('\n').filter((line) => line.trim().startsWith('at '));
    expect(frames[0]).toMatch(/\/rtmpd\/src\/[\w/-]+\.ts:\d+:\d+\)?$/);
    expect(frames.filter((frame) => frame.includes('/dist/bundle/'))).toEqual([]);
  });

  it("answers with mime-db's Content-Types: a charset where the full table has one", async () => {
    const types = async (path: string) => (await fetch(server.httpUrl(path))).headers.get('content-type');
    expect(await types('/health')).toBe('text/plain; charset=utf-8');
    expect(await types('/api/v1/rtmp/streams')).toBe('application/json; charset=utf-8');
    expect(await types('/api/v1/rtmp/streams/rtmp%2Flive%2Fnone')).toBe('application/json; charset=utf-8');
    expect(await types('/metrics')).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
