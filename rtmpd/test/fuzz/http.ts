// The HTTP port as the internet sees it: random requests to every route the
// OpenAPI document lists (path parameters, query strings, headers, methods
// and bodies drawn from values that have broken servers before), and, one
// time in ten, such a request with its bytes edited and sent raw. The
// answer is never a 5xx (a method a path does not take is a 405, whatever
// the method), and every 4xx carries the JSON error body.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { errorBodySchema } from '../../src/http/errors.ts';
import { mutate, randomEdits } from '../support/mutations.ts';
import { prng, randomInt } from '../support/random.ts';

/** One request as the fuzzer sent it; what a finding is saved as (the body in base64). */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Sent as these bytes (base64) over a socket rather than through an HTTP client. */
  raw?: string;
}

interface HttpFinding {
  name: string;
  request: FuzzRequest;
  problem: string;
}

export interface OpenApi {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
}

interface RouteTemplate {
  path: string;
  methods: string[];
  query: string[];
}

/** Every route of the OpenAPI document (GET /api/v1/openapi.json), with its methods and query parameters. */
export function routesOf(openapi: OpenApi): RouteTemplate[] {
  return Object.entries(openapi.paths).map(([path, operations]) => ({
    path,
    methods: Object.keys(operations).map((m) => m.toUpperCase()),
    query: Object.values(operations).flatMap((op) => (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)),
  }));
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[randomInt(random, items.length)]!;

const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'FUZZ'];
/** Path segments and query values, URL-encoded where needed. */
const VALUES = [
  'live',
  'test',
  'rtmp%2Flive%2Ftest',
  'rtmp%2Flive',
  '',
  '..',
  '%2e%2e',
  '%2F',
  '%00',
  '%ff',
  '%',
  '%zz',
  '%C3%A9',
  'a'.repeat(3000),
  'x.flv',
  'index.m3u8',
  'seg-1.m4s',
  'init.mp4',
  'p0-1.mp4',
  '0',
  '-1',
  '1e309',
  'NaN',
  '99999999999999999999',
  'true',
  '[]',
  '{}',
  '%7B%22a%22%3A1%7D',
];
const QUERY_NAMES = [
  'token',
  'expires',
  'sign',
  'limit',
  'cursor',
  'from',
  'to',
  'app',
  'key',
  '_HLS_msn',
  '_HLS_part',
  'width',
  '__proto__',
];
const HEADERS: Record<string, readonly string[]> = {
  authorization: ['Bearer TOKEN', 'Bearer wrong', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer eyJhbGciOiJub25lIn0.e30.', 'x'.repeat(9000)],
  accept: ['*/*', 'application/json', 'text/html', 'image/jpeg', ''],
  range: ['bytes=0-', 'bytes=-5', 'bytes=5-1', 'bytes=99999999999-', 'bytes=0-0,1-1,2-2', 'lines=1-2', 'bytes=a-b'],
  'if-none-match': ['*', '"x"', 'W/"1"', ''],
  'if-modified-since': ['Thu, 01 Jan 1970 00:00:00 GMT', 'garbage'],
  origin: ['http://evil.example', 'null', ''],
  'content-type': ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-9'],
  'x-forwarded-for': ['1.2.3.4', '::1, 300.1.1.1', 'garbage'],
  forwarded: ['for=1.2.3.4', 'for="[::1]:80";proto=https', 'for=;;;'],
  'accept-encoding': ['gzip', 'br, deflate', 'identity;q=0'],
};

function randomPath(random: Random, route: RouteTemplate): string {
  let path = route.path.replace(/\{[^}]+\}/g, () => pick(random, VALUES));
  if (random() < 0.1) path += pick(random, ['/', '//', '/.', '%2F', ';x']);
  const names = [...route.query, ...QUERY_NAMES];
  const query = Array.from({ length: randomInt(random, 4) }, () => `${pick(random, names)}=${pick(random, VALUES)}`);
  return query.length > 0 ? `${path}?${query.join('&')}` : path;
}

function randomBody(random: Random): Buffer {
  switch (randomInt(random, 4)) {
    case 0:
      return Buffer.from('{"reason":"x","expires_at":"2030-01-01T00:00:00Z"}');
    case 1:
      return Buffer.from('{"a":'.repeat(200));
    case 2:
      return Buffer.alloc(randomInt(random, 1 << 20), 0x61);
    default:
      return Buffer.from(Array.from({ length: randomInt(random, 512) }, () => randomInt(random, 256)));
  }
}

/** One random request to one of `routes`; `token` stands for the server's API token in the headers drawn. */
function randomRequest(random: Random, routes: readonly RouteTemplate[], token: string): FuzzRequest {
  const route = pick(random, routes);
  const method = random() < 0.7 ? pick(random, route.methods) : pick(random, METHODS);
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(HEADERS)) if (random() < 0.2) headers[name] = pick(random, values).replace('TOKEN', token);
  const fuzzed: FuzzRequest = { method, path: randomPath(random, route), headers };
  if (method !== 'GET' && method !== 'HEAD' && random() < 0.5) fuzzed.body = randomBody(random).toString('base64');
  if (random() < 0.1) fuzzed.raw = mutate(rawBytes(fuzzed), randomEdits(random, 1 + randomInt(random, 6))).toString('base64');
  return fuzzed;
}

function rawBytes(r: FuzzRequest): Buffer {
  const body = Buffer.from(r.body ?? '', 'base64');
  const head = [`${r.method} ${r.path} HTTP/1.1`, 'host: 127.0.0.1', ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)];
  if (body.length > 0) head.push(`content-length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

interface Answer {
  status: number;
  contentType: string;
  /** The first 64 KiB at most: a live stream's answer never ends. */
  body: Buffer;
}

/** What is wrong with an answer to `r`, or undefined. */
export function problemOf(r: FuzzRequest, answer: Answer): string | undefined {
  const { status, contentType, body } = answer;
  if (status >= 500) return `answered ${status}: ${body.toString().slice(0, 300)}`;
  if (status < 400 || status >= 500 || r.method === 'HEAD') return undefined;
  if (!contentType.startsWith('application/json')) return `answered ${status} as ${contentType || 'no content type'}, not JSON`;
  try {
    errorBodySchema.parse(JSON.parse(body.toString()));
  } catch {
    return `answered ${status} without the error body: ${body.toString().slice(0, 300)}`;
  }
  return undefined;
}

const MAX_READ = 64 * 1024;

/** Sends `r`; resolves with the answer (undefined when the connection ended with none, which a raw request may rightly get). */
export function send(port: number, r: FuzzRequest, timeoutMs = 3000): Promise<Answer | undefined> {
  return r.raw ? sendRaw(port, Buffer.from(r.raw, 'base64'), timeoutMs) : sendHttp(port, r, timeoutMs);
}

function sendHttp(port: number, r: FuzzRequest, timeoutMs: number): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      let length = 0;
      const done = () => {
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(parts) });
        req.destroy();
      };
      res.on('data', (part: Buffer) => {
        parts.push(part);
        length += part.length;
        if (length >= MAX_READ) done();
      });
      res.on('end', done);
      res.on('error', done);
      // A live stream's answer: what came within the time is enough.
      setTimeout(done, 1000).unref();
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end(r.body === undefined ? undefined : Buffer.from(r.body, 'base64'));
  });
}

function sendRaw(port: number, bytes: Buffer, timeoutMs: number): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    socket.on('data', (part: Buffer) => parts.push(part));
    socket.on('error', () => undefined);
    socket.end(bytes);
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.once('close', () => resolve(parseRawAnswer(Buffer.concat(parts))));
  });
}

/** The first answer on a raw connection; its body only when it has a Content-Length (an error body always has). */
function parseRawAnswer(bytes: Buffer): Answer | undefined {
  const text = bytes.toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (!status) return undefined;
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd < 0 ? undefined : headEnd);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  const contentType = /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1] ?? '';
  const body = length && headEnd >= 0 ? bytes.subarray(headEnd + 4, headEnd + 4 + Number(length[1])) : Buffer.alloc(0);
  return { status: Number(status[1]), contentType, body };
}

interface HttpFuzzOptions {
  port: number;
  routes: readonly RouteTemplate[];
  /** The server's API token, sent in some requests so that token-only routes run too. */
  token: string;
  seed: number;
  maxRequests: number;
  deadline?: number;
  concurrency: number;
}

export async function fuzzHttp(
  options: HttpFuzzOptions,
): Promise<{ requests: number; statuses: Record<number, number>; findings: HttpFinding[] }> {
  const random = prng(options.seed);
  const findings: HttpFinding[] = [];
  const statuses: Record<number, number> = {};
  const running = new Set<Promise<void>>();
  let requests = 0;
  for (; requests < options.maxRequests && (options.deadline === undefined || performance.now() < options.deadline); requests++) {
    const r = randomRequest(random, options.routes, options.token);
    const sent = send(options.port, r).then((answer) => {
      if (!answer) return;
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
      const problem = problemOf(r, answer);
      if (problem)
        findings.push({ name: `http-${createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 16)}`, request: r, problem });
    });
    running.add(sent);
    void sent.finally(() => running.delete(sent));
    if (running.size >= options.concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  return { requests, statuses, findings };
}
