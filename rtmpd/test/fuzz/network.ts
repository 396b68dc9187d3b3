// The RTMP port as the internet sees it: mutated sessions (wire-mutations.ts)
// sent over TCP to a real rtmpd process, several at once, each in a few
// writes. Most clients hang up after sending; some stay silent with the
// connection open (reading, or not reading at all), and the server must
// close those within its timeouts. The inputs and what each client does are
// drawn from the seed before anything is sent, so a seed repeats its run
// however the machine schedules it.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { prng, randomInt } from '../support/random.ts';
import { metric, probe, publishTestPattern, waitForStream, type RunningServer } from '../support/processes.ts';
import { RtmpClient } from '../support/rtmp-client.ts';
import { eventually, until } from '../support/wait.ts';
import { mutatedSession, type WireMessage } from './wire-mutations.ts';

/**
 * rtmpd's flags for a fuzz run: short timeouts, so that silent clients are
 * closed within seconds, no publish rate limit (every fuzz client comes from
 * 127.0.0.1), and small limits on what clients may make it hold, so that
 * the memory bound (rssBoundMiB) is tight.
 */
const FUZZ_TIMEOUT_SECONDS = 2;
const LIMITS = { partialMessages: 16, gopCache: 1, playerBuffer: 0.25 }; // MiB
const TIMEOUT_FLAGS = [
  '--connect-timeout-seconds',
  '--start-timeout-seconds',
  '--idle-timeout-seconds',
  '--max-pause-seconds',
  '--player-stall-timeout-seconds',
];
export const FUZZ_SERVER_FLAGS = [
  ...TIMEOUT_FLAGS.flatMap((flag) => [flag, String(FUZZ_TIMEOUT_SECONDS)]),
  ...['--max-publishes-per-address-per-minute', '0'],
  ...['--partial-messages-max-bytes', String(LIMITS.partialMessages << 20)],
  ...['--max-message-bytes', String(1 << 20)],
  ...['--gop-cache-max-bytes', String(LIMITS.gopCache << 20)],
  ...['--player-max-buffer-bytes', String(LIMITS.playerBuffer * (1 << 20))],
];

/**
 * How long a client that goes silent may be left open. A silent client is
 * closed by the timeout of the state it stopped in, checked every 0.5 s;
 * the longest chain is a player whose publisher goes silent: the
 * publisher's idle timeout ends the stream, then the player, back to
 * connected, has the start timeout. One second on top for a loaded machine.
 */
export const CLOSE_WITHIN_MS = (2 * FUZZ_TIMEOUT_SECONDS + 2 * 0.5 + 1) * 1000;

/**
 * The peak RSS (MiB) rtmpd may reach during a run: what it had when it was
 * ready, plus twice what clients may make it hold (messages still arriving,
 * and per concurrent client a stream's GOP cache and a player's queue: every
 * fuzz client may publish or play a stream of its own), twice because V8
 * frees only at its next collection, plus 64 MiB for the code and buffers
 * that the first connections of every kind bring in.
 */
export const rssBoundMiB = (readyMiB: number, concurrency: number): number =>
  readyMiB + 2 * (LIMITS.partialMessages + concurrency * (LIMITS.gopCache + LIMITS.playerBuffer)) + 64;

/** A process's RSS now and its peak, in MiB (/proc/<pid>/status). */
export function rssMiB(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { now: kB('VmRSS') / 1024, peak: kB('VmHWM') / 1024 };
}

/** What a client does once its bytes are sent. */
export type Behaviour = 'hangup' | 'silent' | 'deaf';

interface TcpFinding {
  /** From the input's hash; the input is saved under it. */
  name: string;
  input: Buffer;
  behaviour: Behaviour;
  problem: string;
}

interface TcpFuzzOptions {
  port: number;
  /** The sessions mutated, as messages (wire-mutations.ts's messagesOf). */
  sessions: readonly (readonly WireMessage[])[];
  seed: number;
  /** Stop after this many clients, or at this time (performance.now()), whichever comes first. */
  maxClients: number;
  deadline?: number;
  /** Clients connected at once. */
  concurrency: number;
  /** A silent client must be closed by the server within this (CLOSE_WITHIN_MS for FUZZ_SERVER_FLAGS). */
  closeWithinMs: number;
  /**
   * The rtmpd process listening on `port`: a client whose connection it
   * logs an error for is a finding, and if it exits, the clients connected
   * then are, and the run stops.
   */
  server?: RunningServer;
}

interface TcpFuzzResult {
  clients: number;
  /** Clients that went silent, and the longest the server took to close one. */
  silent: number;
  slowestCloseMs: number;
  findings: TcpFinding[];
}

export async function fuzzTcp(options: TcpFuzzOptions): Promise<TcpFuzzResult> {
  const random = prng(options.seed);
  const running = new Set<Promise<void>>();
  const findings: TcpFinding[] = [];
  const result = { clients: 0, silent: 0, slowestCloseMs: 0, findings };
  const blame = new ServerBlame(options.server, findings);
  while (result.clients < options.maxClients && (options.deadline === undefined || performance.now() < options.deadline) && blame.alive) {
    const input = mutatedSession(random, options.sessions);
    const behaviour: Behaviour = random() < 0.9 ? 'hangup' : random() < 0.7 ? 'silent' : 'deaf';
    const cuts = Array.from({ length: randomInt(random, 3) }, () => randomInt(random, input.length));
    const connected = (port: number) => blame.connected(port, input, behaviour);
    const client = sendAs(options.port, input, cuts, behaviour, options.closeWithinMs, connected).then((closedAfterMs) => {
      blame.check();
      if (behaviour === 'hangup') return;
      result.silent++;
      result.slowestCloseMs = Math.max(result.slowestCloseMs, closedAfterMs ?? Infinity);
      if (closedAfterMs === undefined)
        findings.push(finding(input, behaviour, `left open ${options.closeWithinMs} ms after its last byte`));
    });
    result.clients++;
    running.add(client);
    void client.finally(() => running.delete(client));
    if (running.size >= options.concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  if (options.server) await untilHandled(options.server);
  blame.check();
  return result;
}

/**
 * Waits until rtmpd has handled every connection so far, their log lines written: none open any
 * more, then a publish of its own, whose log line comes after theirs on rtmpd's stdout. What it did
 * not log by then, it did not log.
 */
export async function untilHandled(server: RunningServer): Promise<void> {
  await eventually('every connection closed', async () => (await metric(server, 'rtmpd_connections')) === 0);
  const key = `handled-${randomUUID()}`;
  const marker = await RtmpClient.connect(server.rtmpUrl('live', key));
  try {
    await marker.publish();
    await until(() => server.logs.some((line) => line.msg === 'rtmp publish' && line.stream === `rtmp/live/${key}`));
  } finally {
    marker.close();
  }
}

/** Clients remembered by their port, to find the input behind a log line that names it. */
const REMEMBERED_CLIENTS = 1024;

/**
 * Finds the clients to blame for what the server did: the one whose
 * address (127.0.0.1:<port>) an error log line names, or, when the server
 * exited, the last clients connected.
 */
class ServerBlame {
  readonly #server: RunningServer | undefined;
  readonly #findings: TcpFinding[];
  readonly #clients = new Map<number, { input: Buffer; behaviour: Behaviour }>();
  #logsRead = 0;
  #exitBlamed = false;

  constructor(server: RunningServer | undefined, findings: TcpFinding[]) {
    this.#server = server;
    this.#findings = findings;
  }

  get alive(): boolean {
    const child = this.#server?.child;
    return !child || (child.exitCode === null && child.signalCode === null);
  }

  connected(port: number, input: Buffer, behaviour: Behaviour): void {
    this.#clients.delete(port);
    this.#clients.set(port, { input, behaviour });
    if (this.#clients.size > REMEMBERED_CLIENTS) this.#clients.delete(this.#clients.keys().next().value!);
  }

  check(): void {
    const server = this.#server;
    if (!server) return;
    for (; this.#logsRead < server.logs.length; this.#logsRead++) {
      const line = server.logs[this.#logsRead]!;
      const port = Number(/^127\.0\.0\.1:(\d+)$/.exec(String(line.remote))?.[1]);
      const client = Number(line.level) >= 50 ? this.#clients.get(port) : undefined;
      if (client)
        this.#findings.push(finding(client.input, client.behaviour, `rtmpd logged ${String(line.msg)}: ${JSON.stringify(line.err)}`));
    }
    if (this.alive || this.#exitBlamed) return;
    this.#exitBlamed = true;
    for (const client of [...this.#clients.values()].slice(-16))
      this.#findings.push(finding(client.input, client.behaviour, 'rtmpd exited around its time'));
  }
}

function finding(input: Buffer, behaviour: Behaviour, problem: string): TcpFinding {
  return { name: `tcp-${createHash('sha256').update(input).digest('hex').slice(0, 16)}`, input, behaviour, problem };
}

/**
 * Sends `input` in writes cut at `cuts`, one per tick, then behaves as told.
 * For a client that stays: how long after its last byte the server closed
 * the connection, or undefined when it had not within `closeWithinMs`.
 */
export function sendAs(
  port: number,
  input: Buffer,
  cuts: number[],
  behaviour: Behaviour,
  closeWithinMs: number,
  connected: (localPort: number) => void = () => undefined,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let closed = false;
    let sentAt = performance.now();
    socket.on('error', () => undefined); // the server may close mid-write: that is its right
    if (behaviour === 'deaf') {
      // A paused socket does not read the server's FIN either: the kernel's view of it tells.
      socket.pause();
      const watch = setInterval(() => socket.localPort && !established(socket.localPort, port) && socket.destroy(), 100);
      socket.once('close', () => clearInterval(watch));
    } else socket.on('data', () => undefined);
    const bounds = [0, ...[...cuts].sort((a, b) => a - b), input.length];
    /** One write per tick, so that the server reads the pieces apart. */
    const writeFrom = (piece: number): void => {
      if (closed) return;
      if (piece < bounds.length) {
        socket.write(input.subarray(bounds[piece - 1], bounds[piece]));
        setImmediate(() => writeFrom(piece + 1));
        return;
      }
      sentAt = performance.now();
      if (behaviour === 'hangup') setTimeout(() => socket.destroy(), 100);
    };
    socket.once('connect', () => {
      connected(socket.localPort!);
      writeFrom(1);
    });
    const timer = setTimeout(() => socket.destroy(), closeWithinMs + 2000);
    socket.once('close', () => {
      closed = true;
      clearTimeout(timer);
      const after = performance.now() - sentAt;
      resolve(after <= closeWithinMs ? after : undefined);
    });
  });
}

/** Whether this process's connection from loopback port `local` to `remote` is still established on both sides (/proc/net/tcp). */
function established(local: number, remote: number): boolean {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const pair = `0100007F:${hex(local)} 0100007F:${hex(remote)} 01 `;
  return readFileSync('/proc/net/tcp', 'utf8').includes(pair);
}

/**
 * What went wrong with the rtmpd process in a run: it exited, it logged an
 * error (an internal error in a connection, an uncaught exception or an
 * unhandled rejection: pino's 50 and 60), or its peak RSS passed `rssBound`.
 */
export function serverProblems(server: RunningServer, rssBound: number): string[] {
  const problems = server.logs.filter((line) => Number(line.level) >= 50).map((line) => `rtmpd logged ${JSON.stringify(line)}`);
  const { exitCode, signalCode, pid } = server.child;
  if (exitCode !== null || signalCode !== null) return [...problems, `rtmpd exited (${exitCode ?? signalCode})`];
  const { peak } = rssMiB(pid!);
  if (peak > rssBound) problems.push(`rtmpd's peak RSS ${peak.toFixed(0)} MiB passed the bound of ${rssBound.toFixed(0)} MiB`);
  return problems;
}

/**
 * After a run, rtmpd still does its work: ffmpeg publishes, ffprobe plays
 * the stream back (H.264 and AAC), and /health answers 200. Throws if not.
 */
export async function checkStillServes(server: RunningServer): Promise<void> {
  const url = server.rtmpUrl('live', 'after-fuzz');
  const publisher = publishTestPattern(url, { seconds: 60, size: '320x180' });
  try {
    await waitForStream(server, 'rtmp/live/after-fuzz');
    const streams = (await probe(url).catch(() => [])).map((s) => s.codec_name).sort();
    if (streams.join() !== 'aac,h264') throw new Error(`ffprobe read ${streams.join() || 'nothing'} from ${url}: ${publisher.stderr()}`);
  } finally {
    publisher.quit();
    await publisher.exited;
  }
  const health = await fetch(server.httpUrl('/health'));
  if (health.status !== 200) throw new Error(`/health answered ${health.status}`);
}
