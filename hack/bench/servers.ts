// The servers under test, each started as a child process on 127.0.0.1 with
// fresh ports and a fresh temp directory, and stopped after its scenario.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fleetPodEnv, type FleetPodIdentity } from '../../e2e/fleet/pod-env.ts';
import { freePort } from '../../e2e/lib/free-port.ts';

export type ServerName = 'rtmpd' | 'nms' | 'nginx';
export const SERVER_NAMES: readonly ServerName[] = ['rtmpd', 'nms', 'nginx'];

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(here, '..', '..');

export interface ServerOptions {
  /** Record every stream as FLV (each server its own way, into its temp directory). */
  recording?: boolean;
  /** Extra rtmpd flags (snapshots). */
  rtmpdFlags?: string[];
  /** Serve HTTP-FLV (rtmpd always does; nms only when asked; nginx-rtmp cannot). */
  httpFlv?: boolean;
  /** Write a V8 CPU profile of rtmpd into this directory. */
  cpuProfDir?: string;
  /** More RTMPD_* variables: an option a comparison build (BENCH_RTMPD_BIN) from before it ignores rather than fails on. */
  rtmpdEnv?: Record<string, string>;
  /** Run rtmpd as this pod of a fleet (rtmpd only). */
  fleetPod?: FleetPod;
}

/** One rtmpd of a fleet, on the ports every pod shares. */
interface FleetPod extends FleetPodIdentity {
  rtmpPort: number;
  httpPort: number;
}

export interface RunningServer {
  name: ServerName | 'proxy';
  pid: number;
  /** rtmp://127.0.0.1:P/live (a fleet pod: its own address) */
  rtmpBase: string;
  /** http://127.0.0.1:P/live, when the server plays HTTP-FLV. */
  httpBase: string | undefined;
  dir: string;
  logPath: string;
  /** Resolves with the exit code or signal once the server is gone. */
  stop(): Promise<string>;
  /** The exit description if the server died on its own. */
  exited(): string | undefined;
}

async function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs: number, logPath: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening; log ${logPath}:\n${tail(logPath)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not listen on ${port} within ${timeoutMs} ms; log ${logPath}:\n${tail(logPath)}`);
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function launch(
  name: RunningServer['name'],
  cmd: string,
  args: string[],
  dir: string,
  rtmpPort: number,
  httpBase: string | undefined,
  cwd = REPO_ROOT,
  env = process.env,
  host = '127.0.0.1',
): Promise<RunningServer> {
  const logPath = join(dir, `${name}.log`);
  const log = openSync(logPath, 'a');
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', log, log] });
  let exitInfo: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve(exitInfo);
    });
    // A spawn failure (missing binary) emits 'error' and no 'exit'.
    child.once('error', (err) => {
      exitInfo = `spawn failed: ${err.message}`;
      resolve(exitInfo);
    });
  });
  let stopping = false;
  const server: RunningServer = {
    name,
    pid: child.pid ?? -1,
    rtmpBase: `rtmp://${host}:${rtmpPort}/live`,
    httpBase,
    dir,
    logPath,
    exited: () => (stopping ? undefined : exitInfo),
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      const how = await exited;
      clearTimeout(timer);
      return how;
    },
  };
  return waitForPort(host, rtmpPort, child, 20_000, logPath).then(
    () => server,
    async (err: unknown) => {
      await server.stop();
      throw err;
    },
  );
}

export async function startServer(name: ServerName, options: ServerOptions = {}): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const pod = options.fleetPod;
  const rtmpPort = pod?.rtmpPort ?? (await freePort());
  const httpPort = pod?.httpPort ?? (await freePort());
  const node = process.execPath;
  switch (name) {
    case 'rtmpd': {
      const host = pod?.ip ?? '127.0.0.1';
      // The bin runs itself (its shebang carries rtmpd's V8 flags) on this Node.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
        ...(pod ? await fleetEnv(pod, dir) : {}),
        // Every publisher comes from 127.0.0.1 too (500 x 1 starts 500 at once). An environment variable, not a
        // flag: a comparison build (BENCH_RTMPD_BIN) from before the option ignores it rather than failing.
        RTMPD_MAX_PUBLISHES_PER_ADDRESS_PER_MINUTE: '0',
        ...options.rtmpdEnv,
      };
      if (options.cpuProfDir) env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${options.cpuProfDir}`;
      // prettier-ignore
      const args = [
        '--rtmp-bind', `${host}:${rtmpPort}`, '--http-bind', `${host}:${httpPort}`,
        '--storage-dir', join(dir, 'storage'), '--keyframe-dir', join(dir, 'keyframes'),
        '--recording-enabled', String(options.recording ?? false), '--snapshot-enabled', 'false', '--shutdown-grace-seconds', '1',
        // Every client comes from 127.0.0.1 (1 x 1000 opens 1001 connections); the peers have no per-address limit.
        '--max-connections-per-address', '0',
        ...(options.rtmpdFlags ?? []),
      ];
      const bin = process.env.BENCH_RTMPD_BIN ?? join(REPO_ROOT, 'rtmpd/bin/rtmpd.js');
      return launch(name, bin, args, dir, rtmpPort, `http://${host}:${httpPort}/live`, REPO_ROOT, env, host);
    }
    case 'nms': {
      const http = options.httpFlv ? httpPort : 0;
      const args = [join(here, 'nms-server.ts'), String(rtmpPort), String(http), dir, options.recording ? 'record' : 'no-record'];
      return launch(name, node, args, dir, rtmpPort, options.httpFlv ? `http://127.0.0.1:${httpPort}/live` : undefined);
    }
    case 'nginx': {
      const template = readFileSync(join(here, 'nginx', 'nginx.conf.template'), 'utf8');
      const record = options.recording
        ? `record all;\n            record_path ${dir}/record;\n            record_unique on;`
        : 'record off;';
      if (options.recording) mkdirSync(join(dir, 'record'));
      const conf = template.replaceAll('{{DIR}}', dir).replaceAll('{{RTMP_PORT}}', String(rtmpPort)).replaceAll('{{RECORD}}', record);
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')];
      return launch(name, 'nginx', args, dir, rtmpPort, undefined, dir);
    }
  }
}

/**
 * A TCP relay in front of `target` (make bench's --proxy): `command` split at spaces, started with
 * `<listen-port> <target's RTMP port>` appended, listening on 127.0.0.1; its rtmpBase is the target's
 * through it.
 */
export async function startProxy(command: string, target: RunningServer): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-proxy-'));
  const [cmd, ...args] = command.trim().split(/\s+/);
  if (!cmd) throw new Error('--proxy: empty command');
  const targetUrl = new URL(target.rtmpBase);
  const port = await freePort();
  return launch('proxy', cmd, [...args, String(port), targetUrl.port], dir, port, undefined);
}

/**
 * What the operator gives a fleet's pods. RTMPD_FLEET_TOKEN is for a BENCH_RTMPD_BIN built before
 * --fleet-token-file (rtmpd ignores variables it has no option for).
 */
async function fleetEnv(pod: FleetPod, dir: string): Promise<NodeJS.ProcessEnv> {
  return { ...(await fleetPodEnv(pod, dir)), RTMPD_FLEET_TOKEN: pod.token };
}

export function removeServerDir(server: RunningServer): void {
  rmSync(server.dir, { recursive: true, force: true });
}
