// What the bundle (rtmpd/bundle.ts) changes in a running rtmpd: node:crypto,
// node:assert and node:zlib load on first use, not at start, and Koa's
// Content-Types come out as with the whole of mime-db from the few entries the
// bundle keeps. Runs against the bundle, as `make test` builds it first.
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverEntry, startServer, stopAll, type RunningServer } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { sleep } from './support/wait.ts';

const bundled = serverEntry().endsWith('rtmpd.js');
const dir = mkdtempSync(join(tmpdir(), 'rtmpd-bundle-'));
const modules = join(dir, 'modules.json');
// Each SIGUSR2 writes the built-in modules the server has loaded so far.
const preload = join(dir, 'modules.mjs');
writeFileSync(
  preload,
  `import { writeFileSync } from 'node:fs';
process.on('SIGUSR2', () => writeFileSync(${JSON.stringify(modules)}, JSON.stringify(process.moduleLoadList)));
`,
);

let server: RunningServer;
beforeAll(async () => {
  if (bundled) server = await startServer([], { RTMPD_NODE_FLAGS: `--import ${preload}` });
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
  return list.filter((entry) => entry.startsWith('NativeModule ')).map((entry) => entry.slice('NativeModule '.length));
}

describe.runIf(bundled)('the bundled rtmpd', () => {
  it('loads node:crypto, node:assert and node:zlib only when it first needs them', async () => {
    const idle = await loadedModules();
    expect(idle).toContain('net');
    expect(idle).not.toContain('crypto');
    expect(idle).not.toContain('assert');
    expect(idle).not.toContain('zlib');
    // The RTMP handshake signs with HMAC-SHA256; Koa asserts on each response's status.
    const client = await RtmpClient.connect(server.rtmpUrl('live', 'bundle'));
    client.close();
    expect((await fetch(server.httpUrl('/health'))).status).toBe(200);
    const used = await loadedModules();
    expect(used).toContain('crypto');
    expect(used).toContain('assert');
  });

  it("answers with mime-db's Content-Types: a charset where the full table has one", async () => {
    const types = async (path: string) => (await fetch(server.httpUrl(path))).headers.get('content-type');
    expect(await types('/health')).toBe('text/plain; charset=utf-8');
    expect(await types('/api/v1/rtmp/streams')).toBe('application/json; charset=utf-8');
    expect(await types('/api/v1/rtmp/streams/rtmp%2Flive%2Fnone')).toBe('application/json; charset=utf-8');
    expect(await types('/metrics')).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
