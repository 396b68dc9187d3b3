// A join storm: many HTTP-FLV players asking for one live stream at once
// (join-storm-client.ts, a process of its own), and a kubelet-like prober
// that asks GET /health on a new connection every few hundred milliseconds
// meanwhile, for join-storm.ts.
import { fork } from 'node:child_process';
import { connect } from 'node:net';

export interface StormResult {
  /** Per player that got one: ms from the storm's start to the end of its first coded video frame. */
  firstVideoMs: number[];
  /** Per connection: ms from the storm's start until it was established. */
  connectMs: number[];
  /** Players without a video frame, by why (an errno code, a status, a close, a time-out). */
  failures: Record<string, number>;
}

export interface StormOptions {
  host: string;
  port: number;
  /** e.g. /live/storm.flv */
  path: string;
  players: number;
  /** When the client gives up on the players still waiting. */
  timeoutMs: number;
}

/** Runs the players in a child process; resolves with what it counted. */
export function runStorm({ host, port, path, players, timeoutMs }: StormOptions): Promise<StormResult> {
  const child = fork(new URL('./join-storm-client.ts', import.meta.url), [host, String(port), path, String(players), String(timeoutMs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (result: StormResult) => resolve(result));
    child.once('exit', (code, signal) => reject(new Error(`join storm client exited (${signal ?? `code ${code}`}) without a result`)));
  });
}

/** GET /health answers as the kubelet sees them: ms from connect to status line, and the probes that got none in time. */
export interface ProbeResult {
  latencyMs: number[];
  /** Probes without a 200 status line within the prober's timeout (a connect that is refused or dropped included). */
  failed: number;
  /** The main loop's heartbeat age each answer named (rtmpd's --health-bind answers with it; /health on the HTTP port does not). */
  heartbeatAgeMs: number[];
}

/**
 * Asks GET /health every `intervalMs` on a new connection, as the kubelet's
 * HTTP probes do (no keep-alive), each probe on its own: one that hangs does
 * not hold back the next.
 */
export class HealthProber {
  private readonly result: ProbeResult = { latencyMs: [], failed: 0, heartbeatAgeMs: [] };
  private readonly timer: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(host: string, port: number, intervalMs: number, timeoutMs: number) {
    this.timer = setInterval(() => {
      const probe = this.probe(host, port, timeoutMs);
      this.inFlight.add(probe);
      void probe.then(() => this.inFlight.delete(probe));
    }, intervalMs);
  }

  /** Stops probing; resolves once the probes in flight have their answer or timed out. */
  async stop(): Promise<ProbeResult> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
    return this.result;
  }

  /** One probe: its latency is to the status line; the heartbeat age, if any, is read from the body at the close. */
  private probe(host: string, port: number, timeoutMs: number): Promise<void> {
    const started = performance.now();
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      let answer = '';
      let statusMs: number | undefined;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.destroy();
        if (statusMs !== undefined && answer.startsWith('HTTP/1.1 200')) this.result.latencyMs.push(statusMs);
        else this.result.failed++;
        const age = /"heartbeatAgeMs":(\d+)/.exec(answer);
        if (age) this.result.heartbeatAgeMs.push(Number(age[1]));
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      socket.once('connect', () => socket.write(`GET /health HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`));
      socket.on('data', (data: Buffer) => {
        answer += data.toString('latin1');
        if (statusMs === undefined && answer.includes('\r\n')) statusMs = performance.now() - started;
      });
      socket.once('error', finish);
      socket.once('close', finish);
    });
  }
}
