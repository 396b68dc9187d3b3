// The OpenAPI document (docs/api/openapi.yaml) against the real thing: it is
// valid OpenAPI 3.1, it names every route rtmpd's HTTP app (and a fleet pod's)
// registers and no other, rtmpd serves it, and the answers of a real rtmpd with a real ffmpeg
// publisher validate against its schemas (with ajv, not with the zod schemas
// the document comes from, which would prove nothing).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Koa from 'koa';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { parse } from 'yaml';
import { startRtmpd, type Rtmpd } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { fleetRoutes, type FleetRoutesOptions } from '../src/fleet/routes.ts';
import type { Router } from '../src/http/required-modules.ts';
import type { LazyRouters } from '../src/http/routing.ts';
import { publishTestPattern, startServer, stopAll, tempDir, waitForStream, type RunningServer } from './support/processes.ts';

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const documentFile = fileURLToPath(new URL('../../docs/api/openapi.yaml', import.meta.url));
let document: Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);

const TOKEN = 'openapi-test-token';
const withToken = { Authorization: `Bearer ${TOKEN}` };
let server: RunningServer;
/** In this process, with no API token configured: for its routers and its 403. */
let local: Rtmpd;

beforeAll(async () => {
  document = parse(await readFile(documentFile, 'utf8')) as Document;
  ajv.addSchema(document, 'openapi');
  const dir = await tempDir('rtmpd-openapi-');
  await writeFile(join(dir, 'tokens'), `${TOKEN}\n`);
  server = await startServer(['--api-token-file', join(dir, 'tokens'), '--recording-segment-seconds', '1', '--hls-enabled', 'true']);
  publishTestPattern(server.rtmpUrl('live', 'api'), { seconds: 60 });
  await waitForStream(server, 'rtmp/live/api');
  const { config } = loadConfig([
    ...['--rtmp-bind', '127.0.0.1:0', '--http-bind', '127.0.0.1:0', '--recording-enabled', 'false'],
    ...['--storage-dir', join(dir, 'storage'), '--keyframe-dir', join(dir, 'keyframes')],
  ]);
  local = await startRtmpd(config, pino({ level: 'silent' }));
}, 60_000);

afterAll(async () => {
  await local?.stop();
  await server?.stop();
  stopAll();
});

/** `METHOD /path/{param}` of every route `router` registers (HEAD comes with GET). */
const routesOf = (router: Router): string[] =>
  router.stack.flatMap((layer) =>
    layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`),
  );

/**
 * The routes of every router the app mounts: Router#routes() hands Koa a
 * dispatch function that carries its router, lazyRouters (http/routing.ts)
 * one that carries its routers once a request has loaded them.
 */
const registeredRoutes = (app: Koa): string[] =>
  app.middleware
    .flatMap((m) => {
      const { router, routers } = m as unknown as { router?: Router } & LazyRouters;
      return router ? [router] : (routers ?? []);
    })
    .flatMap(routesOf);

const documented = (): string[] =>
  Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`));

/** The JSON Schema the document gives for `status` of `method path`, by its JSON pointer into the document. */
function responseSchema(method: string, path: string, status: number): string {
  const response = document.paths[path]?.[method.toLowerCase()]?.responses[String(status)];
  expect(response, `${method} ${path} does not document ${status}`).toBeDefined();
  expect(response!.content?.['application/json']?.schema, `${method} ${path} ${status} is not JSON`).toBeDefined();
  const pointer = ['paths', path, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema']
    .map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1'))
    .join('/');
  return `openapi#/${pointer}`;
}

function validate(method: string, path: string, status: number, body: unknown): string | undefined {
  const check = ajv.getSchema(responseSchema(method, path, status))!;
  return check(body) ? undefined : ajv.errorsText(check.errors);
}

/**
 * Calls `url` on `base` and checks its answer against the document's `path`:
 * the status is documented, a JSON answer validates, and any other answer has
 * a documented content type. Returns the JSON body.
 */
async function call(base: string, method: string, url: string, path: string, expected: number, headers = {}): Promise<unknown> {
  const res = await fetch(`${base}${url}`, { method, headers });
  const text = await res.text();
  expect(res.status, `${method} ${url}: ${text.slice(0, 300)}`).toBe(expected);
  const type = res.headers.get('content-type')?.split(';')[0] ?? '';
  const content = document.paths[path]?.[method.toLowerCase()]?.responses[String(res.status)]?.content;
  if (text) expect(Object.keys(content ?? {}), `${method} ${url}`).toContain(type);
  if (!content?.[type]?.schema) return undefined;
  const body = JSON.parse(text) as unknown;
  expect(validate(method, path, res.status, body), `${method} ${url} → ${text.slice(0, 300)}`).toBeUndefined();
  return body;
}

const api = (method: string, url: string, path: string, status: number, headers = {}) =>
  call(server.httpUrl(''), method, url, path, status, headers);

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    expect(await validator.validate(structuredClone(document) as unknown as Record<string, unknown>)).toEqual({ valid: true });
    expect(validator.version).toBe('3.1');
  });

  it("names every route of rtmpd's HTTP app and of a fleet pod's, and only those", async () => {
    // The API's routers load at its first request.
    await (await fetch(`http://127.0.0.1:${local.httpAddress.port}/api/v1/rtmp/streams`)).arrayBuffer();
    // A pod of a fleet mounts the fleet's routes too (fleet/fleet.ts); building them calls none of the options but the token.
    const fleet = fleetRoutes({ token: 'fleet-token' } as FleetRoutesOptions);
    const routes = new Set([...registeredRoutes(local.httpApp), ...routesOf(fleet)]);
    expect(routes).toContain('GET /health');
    expect(routes).toContain('GET /console/settings.json');
    expect(routes).toContain('GET /fleet/v1/streams');
    expect(new Set(documented())).toEqual(routes);
  });

  it("marks the fleet's and the console's routes internal, and states who may call them", () => {
    const operations = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.values(ops).map((op) => ({ path, ...(op as { tags?: string[]; 'x-internal'?: boolean; security?: object[] }) })),
    );
    const internal = operations.filter((op) => op['x-internal']);
    expect(internal.length).toBe(11);
    for (const op of internal) {
      const fleet = op.path.startsWith('/fleet/v1/');
      expect(op.path, op.path).toMatch(fleet ? /^\/fleet\/v1\// : /^\/(console\/.*)?$/);
      expect(op.tags, op.path).toEqual([fleet ? 'fleet (pod to pod)' : 'console']);
      // The fleet's token alone; the console's pages are open to anyone.
      expect(op.security, op.path).toEqual(fleet ? [{ fleetToken: [] }] : undefined);
    }
    expect(operations.filter((op) => !op['x-internal']).every((op) => !op.tags)).toBe(true);
  });

  it("bounds the play routes' credentials as the play rules read them (auth/credentials.ts)", () => {
    for (const path of ['/{app}/{key}.flv', '/{app}/{key}/index.m3u8', '/{app}/{key}/master.m3u8']) {
      const parameters = (document.paths[path]?.get as unknown as { parameters: { name: string; in: string; schema: object }[] })
        .parameters;
      const query = Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema]));
      expect(query, path).toMatchObject({
        secret: { type: 'string', maxLength: 1024 },
        exp: { type: 'string', pattern: '^\\d{1,12}$' },
        ip: { anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] },
        sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
        jwt: { type: 'string', maxLength: 8192 },
      });
    }
  });

  it('states who may call each route as rtmpd decides it: a token route refuses a caller without one, no other route does', async () => {
    const checked: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const { security, 'x-internal': internal } = operation as { security?: object[]; 'x-internal'?: boolean };
        // The play routes are the play rules' (auth.test.ts); the fleet's are not mounted outside a fleet (fleet/routes.test.ts).
        if (internal && path.startsWith('/fleet/')) continue;
        if (JSON.stringify(security ?? []).includes('playToken')) continue;
        const url = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'stream_id' ? 'rtmp%2Flive%2Fnobody' : 'nobody'));
        const res = await fetch(server.httpUrl(url), { method: method.toUpperCase() });
        await res.arrayBuffer();
        const tokenOnly = JSON.stringify(security) === JSON.stringify([{ apiToken: [] }]);
        if (tokenOnly) expect(res.status, `${method} ${url}`).toBe(401);
        else expect([401, 403], `${method} ${url}: ${res.status}`).not.toContain(res.status);
        checked.push(`${method} ${path}`);
      }
    }
    expect(checked.length).toBeGreaterThan(25);
  });

  it('is served at GET /api/v1/openapi.json, as the committed file says', async () => {
    expect(await api('GET', '/api/v1/openapi.json', '/api/v1/openapi.json', 200)).toBeUndefined();
    const res = await fetch(server.httpUrl('/api/v1/openapi.json'));
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(document);
  });

  it('is held once, not once for each client that asks for it and does not read it', async () => {
    // 2,000 clients with a 2 KiB receive buffer ask and never read: what the kernel does not take of each
    // answer waits in rtmpd. With a read of the file for each request rtmpd grew 92-96 MiB; with one copy, 42.
    expect((await fetch(server.httpUrl('/api/v1/openapi.json'))).status).toBe(200); // the API's modules are loaded
    const before = rssMiB(server.child.pid!);
    const clients = spawn('python3', ['-c', NON_READERS, String(server.httpPort), '2000'], { stdio: ['pipe', 'pipe', 'inherit'] });
    onTestFinished(() => void clients.kill('SIGKILL'));
    await new Promise((resolve) => clients.stdout.once('data', resolve));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(rssMiB(server.child.pid!) - before).toBeLessThan(70);
    clients.stdin.end();
  });
});

/** Python: argv[2] connections to 127.0.0.1:argv[1], each with a small receive buffer, asking for the document; says "asked", then holds them until stdin closes. */
const NON_READERS = `
import socket, sys
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(('127.0.0.1', int(sys.argv[1])))
    s.sendall(b'GET /api/v1/openapi.json HTTP/1.1\\r\\nHost: rtmpd\\r\\n\\r\\n')
    held.append(s)
print('asked', flush=True)
sys.stdin.read()
`;

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe("rtmpd's answers validate against the document", () => {
  const STREAM = '/api/v1/rtmp/streams/{stream_id}';

  it('the stream list and one stream, with and without a token', async () => {
    const { streams } = (await api('GET', '/api/v1/rtmp/streams', '/api/v1/rtmp/streams', 200, withToken)) as { streams: object[] };
    expect(streams).toHaveLength(1);
    await api('GET', '/api/v1/rtmp/streams', '/api/v1/rtmp/streams', 200);
    await api('GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fapi', STREAM, 200);
    await api('GET', '/api/v1/rtmp/streams/rtmp/live/api', '/api/v1/rtmp/streams/rtmp/{app}/{key}', 200, withToken);
  });

  it('a validation that can fail: a stream without its id does not pass', async () => {
    const view = (await (await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fapi'))).json()) as Record<string, unknown>;
    expect(validate('GET', STREAM, 200, view)).toBeUndefined();
    const { stream_id: _, ...withoutId } = view;
    expect(validate('GET', STREAM, 200, withoutId)).toMatch(/stream_id/);
    expect(validate('GET', STREAM, 200, { ...view, players: { ...(view.players as object), total: -1 } })).toMatch(/total/);
    expect(validate('GET', STREAM, 404, { error: { code: 'no_such_code', message: 'x' } })).toMatch(/allowed values/);
  });

  it('errors: 404 for a stream not live, 400 for a bad query or id', async () => {
    await api('GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fnone', STREAM, 404);
    await api('GET', '/api/v1/rtmp/streams?from=1', '/api/v1/rtmp/streams', 400);
    await api('GET', '/api/v1/rtmp/streams/live%2Fapi', STREAM, 400);
    await api('DELETE', '/api/v1/rtmp/streams/rtmp%2Flive%2Fapi?ban_seconds=0', STREAM, 400, withToken);
    await api('GET', '/api/v1/rtmp/recordings?limit=0', '/api/v1/rtmp/recordings', 400);
  });

  it('the snapshot, health, readiness, metrics and HLS answer what the document says', async () => {
    const snapshot = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fapi/snapshot'));
    await snapshot.arrayBuffer();
    await api('GET', '/api/v1/rtmp/streams/rtmp%2Flive%2Fapi/snapshot', `${STREAM}/snapshot`, snapshot.status);
    await api('GET', '/health', '/health', 200);
    await api('GET', '/ready', '/ready', 200);
    await api('GET', '/metrics', '/metrics', 200);
    await api('GET', '/live/api/index.m3u8', '/{app}/{key}/index.m3u8', 200);
    await api('GET', '/live/api/index.m3u8?_HLS_part=1', '/{app}/{key}/index.m3u8', 400);
    await api('GET', '/live/none/seg-0000000000000000-1.m4s', '/{app}/{key}/{file}', 404);
  }, 30_000);

  it("the console's page and settings", async () => {
    const page = await fetch(server.httpUrl('/'));
    await page.arrayBuffer();
    // 503 when the console's bundle is not built (make build).
    await api('GET', '/', '/', page.status);
    expect([200, 503]).toContain(page.status);
    const settings = await api('GET', '/console/settings.json', '/console/settings.json', 200);
    expect(settings).toMatchObject({ http_port: Number(new URL(server.httpUrl('')).port), recordings: true });
  });

  it('the recordings list', async () => {
    const { recordings } = (await api('GET', '/api/v1/rtmp/recordings?stream_id=rtmp%2Flive%2Fapi', '/api/v1/rtmp/recordings', 200)) as {
      recordings: unknown[];
    };
    expect(recordings.length).toBeGreaterThan(0);
    await api('GET', '/api/v1/rtmp/recordings/live%2Fnone%2Fx.mp4', '/api/v1/rtmp/recordings/{id}', 404);
  });

  it('revocations: 401 without a token, 403 when rtmpd has none; put, list, lift', async () => {
    const REVOCATION = '/api/v1/auth/revocations/{stream_id}';
    await api('GET', '/api/v1/auth/revocations', '/api/v1/auth/revocations', 401);
    await call(`http://127.0.0.1:${local.httpAddress.port}`, 'GET', '/api/v1/auth/revocations', '/api/v1/auth/revocations', 403);
    await api('GET', '/api/v1/auth/revocations', '/api/v1/auth/revocations', 401, { Authorization: 'Bearer wrong' });
    await api('PUT', '/api/v1/auth/revocations/rtmp%2Flive%2Fother?seconds=60', REVOCATION, 200, withToken);
    await api('PUT', '/api/v1/auth/revocations/rtmp%2Flive%2Fthird', REVOCATION, 200, withToken);
    const { revocations } = (await api('GET', '/api/v1/auth/revocations', '/api/v1/auth/revocations', 200, withToken)) as {
      revocations: unknown[];
    };
    expect(revocations).toHaveLength(2);
    await api('DELETE', '/api/v1/auth/revocations/rtmp%2Flive%2Fother', REVOCATION, 204, withToken);
    await api('DELETE', '/api/v1/auth/revocations/rtmp%2Flive%2Fother', REVOCATION, 404, withToken);
  });

  it('a kick: 401 without a token, the answer with one', async () => {
    await api('DELETE', '/api/v1/rtmp/streams/rtmp%2Flive%2Fapi', '/api/v1/rtmp/streams/{stream_id}', 401);
    const kicked = await api(
      'DELETE',
      '/api/v1/rtmp/streams/rtmp%2Flive%2Fapi?ban_seconds=1',
      '/api/v1/rtmp/streams/{stream_id}',
      200,
      withToken,
    );
    expect(kicked).toMatchObject({ kicked: 'rtmp/live/api' });
  });
});
