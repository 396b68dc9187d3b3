// Child processes for integration tests: the rtmpd server under test, ffmpeg
// publishers, and the probes that read streams back. Every child is killed
// by the test that started it (or by stopAll in afterAll), never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { StreamView } from '../../src/http/stream-view.ts';
import { testPatternInputs } from './clips.ts';
import { eventually, sleep } from './wait.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');
const RTMPD_ROOT = join(REPO_ROOT, 'rtmpd');

/**
 * The built server (rtmpd/bin/rtmpd.js → dist/bundle) when the bundle is
 * current, as `make test` leaves it; otherwise the TypeScript sources through
 * Node's type stripping, so a test run never exercises stale JavaScript.
 */
export function serverEntry(): string {
  // The bundler rewrites every output, so "current" means no source is newer than the bundle.
  const built = newest(join(RTMPD_ROOT, 'dist', 'bundle'), '.js');
  if (built > 0 && newest(join(RTMPD_ROOT, 'src'), '.ts') <= built) return join(RTMPD_ROOT, 'bin', 'rtmpd.js');
  return join(RTMPD_ROOT, 'src', 'main.ts');
}

/** rtmpd's command line with its two directories, on ephemeral loopback ports unless `binds` names others, then `flags`. */
export function serverArgs(
  dirs: { storage: string; keyframes: string },
  flags: string[] = [],
  binds: { rtmp: string; http: string } = { rtmp: '127.0.0.1:0', http: '127.0.0.1:0' },
): string[] {
  return [
    serverEntry(),
    '--rtmp-bind',
    binds.rtmp,
    '--http-bind',
    binds.http,
    '--storage-dir',
    dirs.storage,
    '--keyframe-dir',
    dirs.keyframes,
    ...flags,
  ];
}

function newest(dir: string, extension: string): number {
  if (!existsSync(dir)) return 0;
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path, extension));
    else if (entry.name.endsWith(extension) && !entry.name.endsWith(`.test${extension}`)) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

export interface RunningServer {
  child: ChildProcess;
  rtmpPort: number;
  httpPort: number;
  rtmpUrl(app: string, key: string): string;
  httpUrl(path: string): string;
  storageDir: string;
  keyframeDir: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts rtmpd on ephemeral ports (read back from its "rtmpd ready" line); `env` is added to this process's. */
export async function startServer(flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'rtmpd-it-'));
  const storageDir = join(dataDir, 'storage');
  const keyframeDir = join(dataDir, 'keyframes');
  const child = spawn(process.execPath, serverArgs({ storage: storageDir, keyframes: keyframeDir }, flags), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  track(child);
  const logs: Record<string, unknown>[] = [];
  const ready = new Promise<{ rtmp: string; http: string }>((resolveReady, reject) => {
    child.once('exit', (code) => reject(new Error(`rtmpd exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === 'rtmpd ready') resolveReady(entry as unknown as { rtmp: string; http: string });
    });
  });
  const { rtmp, http } = await ready;
  const port = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  const rtmpPort = port(rtmp);
  const httpPort = port(http);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return {
    child,
    rtmpPort,
    httpPort,
    rtmpUrl: (app, key) => `rtmp://127.0.0.1:${rtmpPort}/${app}/${key}`,
    httpUrl: (path) => `http://127.0.0.1:${httpPort}${path}`,
    storageDir,
    keyframeDir,
    logs,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * The sum of a metric's series whose labels include `labels`. It throws when none matches: a renamed
 * series or label would otherwise read as 0 and pass the assertions that expect 0.
 */
export async function metric(server: Pick<RunningServer, 'httpUrl'>, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(server.httpUrl('/metrics'))).text();
  const series = [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].filter(([, l]) => (l ?? '').includes(labels));
  if (series.length === 0) throw new Error(`/metrics has no series ${name}{${labels}}`);
  return series.reduce((sum, [, , value]) => sum + Number(value), 0);
}

/** Waits until `metric` reaches `atLeast`: a counter catching up with what a test did. */
export function metricReaches(
  server: Pick<RunningServer, 'httpUrl'>,
  name: string,
  labels: string,
  atLeast: number,
  timeoutMs = 15_000,
): Promise<void> {
  return eventually(`${name}{${labels}} ≥ ${atLeast}`, async () => (await metric(server, name, labels)) >= atLeast, timeoutMs);
}

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kills whatever this test file started and is still running. */
export function stopAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

export interface Publisher {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
  /**
   * Ends ffmpeg as the end of its input would ('q' on its stdin): it unpublishes and
   * exits 0. A test that needs the stream live until it has looked at it publishes for
   * longer than it could take and quits, where a short `seconds` races a loaded machine.
   */
  quit: () => void;
}

/**
 * ffmpeg publishing the test pattern (H.264 + AAC) in real time. `videoFilter`
 * changes the picture, e.g. a hue rotation for a test that compares pictures
 * seconds apart (testsrc2 looks alike every 4 s at whole seconds, where its keyframes fall).
 */
export function publishTestPattern(url: string, { seconds = 60, size = '640x360', videoFilter = '' } = {}): Publisher {
  return runFfmpeg([
    '-re',
    ...testPatternInputs(size),
    '-t',
    String(seconds),
    ...(videoFilter ? ['-vf', videoFilter] : []),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-g',
    '25',
    '-c:a',
    'aac',
    '-f',
    'flv',
    url,
  ]);
}

export function runFfmpeg(args: string[]): Publisher {
  // stdin is a pipe nothing is written to but quit's 'q' (ffmpeg reads it for keys).
  const child = track(spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['pipe', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin!.on('error', () => undefined); // 'q' to an ffmpeg that has just exited
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return { child, stderr: () => stderr, exited, quit: () => void child.stdin!.end('q') };
}

/** The lines a process logged at error or fatal level (pino's 50 and 60), from its JSON log on stdout. */
export function errorLogLines(stdout: string): { level: number; msg: string; err?: unknown }[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: number; msg: string; err?: unknown })
    .filter((entry) => entry.level >= 50);
}

/** Runs a command to completion with a time limit; resolves with its output and exit code. */
export function runCommand(
  command: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

export interface ProbedStream {
  codec_name: string;
  codec_type: string;
  width?: number;
  height?: number;
}

/** ffprobe's view of a file or URL's streams (reads a few seconds of a live URL). */
export async function probe(input: string): Promise<ProbedStream[]> {
  const { code, stdout, stderr } = await runCommand('ffprobe', [
    '-v',
    'error',
    '-rw_timeout',
    '15000000',
    '-show_entries',
    'stream=codec_name,codec_type,width,height',
    '-of',
    'json',
    input,
  ]);
  if (code !== 0) throw new Error(`ffprobe ${input} exited ${code}: ${stderr}`);
  return (JSON.parse(stdout) as { streams: ProbedStream[] }).streams;
}

/** What ffprobe decodes of a file: the frames of each codec, and the file's duration in seconds. */
export async function countFrames(path: string): Promise<{ frames: Record<string, number>; seconds: number }> {
  const { code, stdout, stderr } = await runCommand('ffprobe', [
    ...['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames:format=duration', '-of', 'json', path],
  ]);
  if (code !== 0) throw new Error(`ffprobe ${path} exited ${code}: ${stderr}`);
  const { streams, format } = JSON.parse(stdout) as {
    streams: { codec_name: string; nb_read_frames: string }[];
    format: { duration: string };
  };
  return { frames: Object.fromEntries(streams.map((s) => [s.codec_name, Number(s.nb_read_frames)])), seconds: Number(format.duration) };
}

/** The API's stream object, as rtmpd defines it. */
export type StreamJson = StreamView;

/** The stream list; with an API token, publisher addresses are shown. */
export async function listStreams(server: RunningServer, apiToken?: string): Promise<StreamJson[]> {
  const headers: Record<string, string> = apiToken ? { authorization: `Bearer ${apiToken}` } : {};
  const res = await fetch(server.httpUrl('/api/v1/rtmp/streams'), { headers });
  return ((await res.json()) as { streams: StreamJson[] }).streams;
}

/** Polls until the stream is listed with a decoded video track and a keyframe's worth of data. */
export async function waitForStream(server: RunningServer, id: string, timeoutMs = 15_000): Promise<StreamJson> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const stream = (await listStreams(server)).find((s) => s.stream_id === id);
    if (stream?.video?.width) return stream;
    await sleep(200);
  }
  throw new Error(`stream ${id} not live with video within ${timeoutMs} ms`);
}

export const tempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolveProbe) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolveProbe(true);
      });
      socket.once('error', () => resolveProbe(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}
