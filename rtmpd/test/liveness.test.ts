// Liveness off the main event loop (--health-bind): a real rtmpd whose main
// thread is paused from outside, through the V8 inspector (Debugger.pause stops
// the main thread's JavaScript only; SIGSTOP would stop the liveness thread
// too), answers 503 once its heartbeat is older than the threshold, and 200
// again once resumed; one whose main loop is busy for seconds stays alive
// while /health on the HTTP port waits for that loop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../e2e/lib/free-port.ts';
import { startServer, type RunningServer } from './support/processes.ts';
import { sleep } from './support/wait.ts';

/** The main thread's inspector session: one WebSocket, commands answered in order of their ids. */
class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();

  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      const { id, result } = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (id !== undefined) this.pending.get(id)?.(result);
    });
  }

  static async open(port: number): Promise<Inspector> {
    const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const socket = new WebSocket(target!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve);
      socket.addEventListener('error', reject);
    });
    return new Inspector(socket);
  }

  /** Sends a command; resolves with its result (a paused or busy main thread answers late). */
  send(method: string, params: object = {}): Promise<unknown> {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.pending.set(id, resolve));
  }

  close(): void {
    this.socket.close();
  }
}

interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** GET `url`: its status and body and how long it took, or status 0 if none came within `timeoutMs`. */
async function probe(url: string, timeoutMs = 2000): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text(), ms: performance.now() - started };
  } catch {
    return { status: 0, body: '', ms: performance.now() - started };
  }
}

let server: RunningServer;
let inspector: Inspector;
let livenessUrl: string;

beforeAll(async () => {
  const inspectorPort = await freePort();
  server = await startServer(['--health-bind', '127.0.0.1:0', '--health-max-heartbeat-age-seconds', '2'], {
    NODE_OPTIONS: `--inspect=127.0.0.1:${inspectorPort}`,
  });
  const ready = server.logs.find((entry) => entry.msg === 'rtmpd ready') as { health: string };
  livenessUrl = `http://${ready.health}/health`;
  inspector = await Inspector.open(inspectorPort);
  await inspector.send('Debugger.enable');
});
afterAll(async () => {
  inspector?.close();
  await server?.stop();
});

describe('liveness on --health-bind', () => {
  it('answers 200 with the heartbeat age while the main loop runs', async () => {
    const answer = await probe(livenessUrl);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'alive', heartbeatAgeMs: expect.any(Number) });
  });

  it('stays alive while the main loop is busy for less than the threshold, and /health on the HTTP port waits', async () => {
    // 1.5 s of work on the main thread: less than the 2 s threshold, as a join storm's longest stall is less than 10 s.
    const busy = inspector.send('Runtime.evaluate', { expression: 'for (const end = Date.now() + 1500; Date.now() < end; );' });
    await sleep(200);
    const answered = (answer: Promise<Answer>) => answer.then((a) => ({ ...a, at: performance.now() }));
    const [onHttpPort, ...onHealthPort] = await Promise.all([
      answered(probe(server.httpUrl('/health'), 5000)),
      ...[0, 300].map((delay) => sleep(delay).then(() => answered(probe(livenessUrl)))),
    ]);
    await busy;
    expect(onHttpPort.status).toBe(200);
    // Order, not durations: on a loaded machine any of them may be slow, but only the HTTP port's waits for the loop.
    for (const answer of onHealthPort) {
      expect(answer.status).toBe(200);
      expect(answer.at).toBeLessThan(onHttpPort.at);
    }
  });

  it('answers 503 naming the heartbeat age once the main thread is stopped past the threshold, 200 once it runs again', async () => {
    await inspector.send('Debugger.pause');
    let answer: Answer | undefined;
    for (let tries = 0; tries < 50 && answer?.status !== 503; tries++) {
      answer = await probe(livenessUrl);
      if (answer.status !== 503) await sleep(200);
    }
    expect(answer!.status).toBe(503);
    expect(JSON.parse(answer!.body)).toEqual({ status: 'stuck', heartbeatAgeMs: expect.any(Number), maxHeartbeatAgeMs: 2000 });
    expect(JSON.parse(answer!.body).heartbeatAgeMs).toBeGreaterThan(2000);
    // The main thread really is stopped: the HTTP port's /health has no answer.
    expect((await probe(server.httpUrl('/health'), 1000)).status).toBe(0);
    await inspector.send('Debugger.resume');
    await sleep(600);
    expect((await probe(livenessUrl)).status).toBe(200);
  });

  it('serves GET /health only', async () => {
    const other = await probe(livenessUrl.replace('/health', '/metrics'));
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body)).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    const post = await fetch(livenessUrl, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toEqual({ error: { code: 'method_not_allowed', message: '/health takes GET or HEAD, not POST' } });
  });
});
