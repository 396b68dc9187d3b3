// rtmpd's own CPU for a fixed amount of work, with the kernel's reads and the
// publishers' timing taken out: one publisher's bytes, as OBS writes them
// (one write per message, at --chunk-size), are recorded once and handed to
// every publisher's server-side session as if each write were one socket
// read, paced in real time, through the server's real code (chunk reader →
// session → hub → tick writer → player sockets). The players run in a child
// process that reads and counts, so their CPU is not this process's. What
// `make bench` measures moves with how many reads the same bytes take (a
// busy machine merges them); here every run does the same reads, so user
// CPU seconds compare across builds on a loaded machine.
//
//   node --conditions=source --max-semi-space-size=2 hack/bench/replay.ts \
//     --streams 500 --players 1 --fixture 360p --chunk-size 4096 --seconds 10 [--src <rtmpd/src>] [--profile <file>] [--allocations <file>]
//
// --src imports the server from another checkout's rtmpd/src (an A/B build
// kept under .bench/, so that its imports resolve in this tree's node_modules).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { FIXTURES, KEYFRAME_INTERVAL_SECONDS, loadFixture, type Fixture } from './fixture.ts';
import { monotonicMicros, summarizeProfile, formatProfile } from './profile.ts';
import { RtmpPeer } from './rtmp-peer.ts';
import type { SocketIo } from '../../rtmpd/src/rtmp/io/socket-io.ts';
import type * as ServerModule from '../../rtmpd/src/rtmp/server/server.ts';
import type * as HubModule from '../../rtmpd/src/hub/hub.ts';
import type * as ConfigModule from '../../rtmpd/src/config.ts';
import type * as MetricsModule from '../../rtmpd/src/telemetry/metrics.ts';
import type * as SocketIoModule from '../../rtmpd/src/rtmp/io/socket-io.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const VIDEO = 9;
const AUDIO = 8;

interface Options {
  streams: number;
  players: number;
  fixture: string;
  chunkSize: number;
  seconds: number;
  src: string;
  profile: string | undefined;
  /** Where to write a sampling heap profile of what the measured window allocated (collected objects included). */
  allocations: string | undefined;
  /** --gop-cache-max-bytes (0: off); rtmpd's default when absent. */
  gopCacheMaxBytes: number | undefined;
}

function parseOptions(): Options & { playersOf: number | undefined } {
  const { values } = parseArgs({
    options: {
      streams: { type: 'string', default: '500' },
      players: { type: 'string', default: '1' },
      fixture: { type: 'string', default: '360p' },
      'chunk-size': { type: 'string', default: '4096' },
      seconds: { type: 'string', default: '10' },
      src: { type: 'string', default: join(REPO_ROOT, 'rtmpd/src') },
      profile: { type: 'string' },
      allocations: { type: 'string' },
      'gop-cache-max-bytes': { type: 'string' },
      'players-of': { type: 'string' },
    },
  });
  const positive = (name: string, value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive integer, not ${value}`);
    return n;
  };
  if (!FIXTURES[values.fixture]) throw new Error(`--fixture is one of ${Object.keys(FIXTURES).join(', ')}`);
  return {
    streams: positive('streams', values.streams),
    players: Math.max(0, Number(values.players)),
    fixture: values.fixture,
    chunkSize: positive('chunk-size', values['chunk-size']),
    seconds: positive('seconds', values.seconds),
    src: resolve(values.src),
    profile: values.profile,
    allocations: values.allocations,
    gopCacheMaxBytes: values['gop-cache-max-bytes'] === undefined ? undefined : Number(values['gop-cache-max-bytes']),
    playersOf: values['players-of'] === undefined ? undefined : positive('players-of', values['players-of']),
  };
}

/** `connect` for every item, 50 at a time (a connection each, in the order of `items`). */
async function inBatches<T, R>(items: T[], connect: (item: T) => Promise<R>): Promise<R[]> {
  const done: R[] = [];
  for (let i = 0; i < items.length; i += 50) done.push(...(await Promise.all(items.slice(i, i + 50).map(connect))));
  return done;
}

/** The child: `players` per stream read and count; prints `ready`, then on stdin's end the messages each got. */
async function runPlayers(port: number, streams: number, players: number): Promise<void> {
  let messages = 0;
  const keys = Array.from({ length: streams * players }, (_, i) => `s${Math.floor(i / players)}`);
  const peers = await inBatches(keys, async (key) => {
    const peer = await RtmpPeer.connect(`rtmp://127.0.0.1:${port}/live/${key}`, undefined);
    await peer.play(() => void messages++);
    return peer;
  });
  process.stdout.write('ready\n');
  process.stdin.resume();
  await new Promise((done) => process.stdin.once('end', done));
  process.stdout.write(`${JSON.stringify({ messages })}\n`);
  for (const peer of peers) peer.close();
  process.exit(0);
}

/** The server's session of each accepted connection, by the client's port: `adopt` is where a connection meets its receiver. */
function captureReceivers(
  SocketIoClass: typeof SocketIoModule.SocketIo,
): Map<number, { io: SocketIo; receiver: SocketIoModule.ReadReceiver }> {
  const byPort = new Map<number, { io: SocketIo; receiver: SocketIoModule.ReadReceiver }>();
  const adopt = SocketIoClass.prototype.adopt;
  SocketIoClass.prototype.adopt = function (this: SocketIo, accepted: Socket) {
    const port = accepted.remotePort!; // before adopt, which moves the handle out of `accepted`
    const adopted = adopt.call(this, accepted);
    return {
      socket: adopted.socket,
      attach: (receiver) => {
        byPort.set(port, { io: this, receiver });
        adopted.attach(receiver);
      },
    };
  };
  return byPort;
}

/** One publisher's writes for `seconds` of the fixture, grouped by 40 ms step: recorded from a live peer's own writer. */
function record(peer: RtmpPeer, fixture: Fixture, seconds: number, stepMs: number): Buffer[][] {
  const socket = peer.socket as unknown as { write: (b: Buffer) => boolean };
  const write = socket.write;
  const steps: Buffer[][] = [];
  socket.write = (bytes: Buffer) => {
    steps[steps.length - 1]!.push(Buffer.from(bytes));
    return true;
  };
  const endMs = seconds * 1000;
  let i = 0;
  for (let stepStart = 0; stepStart < endMs; stepStart += stepMs) {
    steps.push([]);
    while (true) {
      const loop = Math.floor(i / fixture.frames.length);
      const frame = fixture.frames[i % fixture.frames.length]!;
      const at = loop * fixture.loopMs + frame.timestamp;
      if (at >= stepStart + stepMs) break;
      peer.sendMedia(frame.kind === 'video' ? VIDEO : AUDIO, at, frame.body);
      i++;
    }
  }
  socket.write = write;
  return steps;
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options.playersOf !== undefined) return runPlayers(options.playersOf, options.streams, options.players);
  const { startRtmpServer } = (await import(join(options.src, 'rtmp/server/server.ts'))) as typeof ServerModule;
  const { StreamHub } = (await import(join(options.src, 'hub/hub.ts'))) as typeof HubModule;
  const { parseConfig } = (await import(join(options.src, 'config.ts'))) as typeof ConfigModule;
  const { RtmpdMetrics } = (await import(join(options.src, 'telemetry/metrics.ts'))) as typeof MetricsModule;
  const { SocketIo } = (await import(join(options.src, 'rtmp/io/socket-io.ts'))) as typeof SocketIoModule;
  const receivers = captureReceivers(SocketIo);

  const defaults = parseConfig({});
  const config = {
    ...defaults,
    gopCacheMaxBytes: options.gopCacheMaxBytes ?? defaults.gopCacheMaxBytes,
    rtmpBind: '127.0.0.1:0',
    maxConnections: 100_000,
    maxConnectionsPerAddress: 100_000,
  };
  const metrics = new RtmpdMetrics({ maxStreams: config.metricsMaxStreams });
  const hub = new StreamHub({
    gopCacheMaxBytes: config.gopCacheMaxBytes,
    playerMaxBufferBytes: config.playerMaxBufferBytes,
    playerMaxQueueMs: config.playerMaxQueueSeconds * 1000,
    playerStallTimeoutMs: config.playerStallTimeoutSeconds * 1000,
    playerMinBytesPerSecond: config.playerMinBytesPerSecond,
    onRelayed: metrics.observeRelay,
  });
  metrics.watchHub(hub);
  const server = await startRtmpServer({ hub, config: { ...config, maxPublishesPerAddressPerMinute: 100_000 } });
  const port = server.address().port;
  const fixture = await loadFixture(FIXTURES[options.fixture]!, join(REPO_ROOT, '.bench/fixtures'));
  const style = { chunkSize: options.chunkSize, nagle: true, writes: 'message' as const };

  const keys = Array.from({ length: options.streams }, (_, s) => `s${s}`);
  const publishers = await inBatches(keys, async (key) => {
    const peer = await RtmpPeer.connect(`rtmp://127.0.0.1:${port}/live/${key}`, style);
    await peer.publish();
    for (const h of fixture.headers) peer.sendMedia(h.kind === 'video' ? VIDEO : AUDIO, 0, h.body);
    return peer;
  });
  await sleep(500);
  const sessions = publishers.map((p) => receivers.get((p.socket as Socket).localPort!)!);
  // Every publisher's state is the same (same headers sent), so one recording serves them all;
  // each starts at its own step of it, as the bench's publishers spread their keyframes over
  // one keyframe interval (a cache restarting for every stream at once would be another load).
  const stepMs = 1000 / fixture.spec.fps;
  const gopSteps = KEYFRAME_INTERVAL_SECONDS * fixture.spec.fps;
  const steps = record(publishers[0]!, fixture, options.seconds + 2 * KEYFRAME_INTERVAL_SECONDS, stepMs);
  const stepCount = options.seconds * fixture.spec.fps;
  const phase = sessions.map((_, s) => Math.floor((s * gopSteps) / options.streams));
  let messagesIn = 0;
  // What each player is due: the decoder config, then every message of the warm-up and the window.
  let due = fixture.headers.length * options.streams;
  for (const first of phase)
    for (let i = 0; i < gopSteps + stepCount; i++) {
      if (i >= gopSteps) messagesIn += steps[first + i]!.length;
      due += steps[first + i]!.length;
    }

  const players = options.players > 0 ? await startPlayers(port, options) : undefined;
  // One GOP unmeasured: the caches fill and V8 compiles the hot path.
  await feed(sessions, steps, phase, 0, gopSteps, stepMs);
  const profiler = options.profile ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
    await profiler.post('Profiler.start');
  }
  const heap = options.allocations ? new Session() : undefined;
  if (heap) {
    heap.connect();
    await heap.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const startUs = monotonicMicros();
  const before = process.cpuUsage();
  await feed(sessions, steps, phase, gopSteps, stepCount, stepMs);
  const cpu = process.cpuUsage(before);
  const endUs = monotonicMicros();
  if (heap) writeFileSync(options.allocations!, JSON.stringify((await heap.post('HeapProfiler.stopSampling')).profile));
  let profileText = '';
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(options.profile!, JSON.stringify(profile));
    profileText = formatProfile(summarizeProfile(options.profile!, { startUs, endUs }, 25, REPO_ROOT));
  }
  await sleep(1000);
  const received = players ? await players.stop() : 0;
  const result = {
    streams: options.streams,
    players: options.players,
    fixture: options.fixture,
    chunkSize: options.chunkSize,
    gopCacheMaxBytes: config.gopCacheMaxBytes,
    seconds: options.seconds,
    src: options.src,
    userMs: cpu.user / 1000,
    systemMs: cpu.system / 1000,
    messagesIn,
    messagesOut: messagesIn * options.players,
    /** Messages the players were due and did not get: the replay is valid only at 0. */
    lost: due * options.players - received,
    userUsPerMessageIn: cpu.user / messagesIn,
    loadAverage: (await import('node:os')).loadavg(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (profileText) process.stderr.write(`${profileText}\n`);
  for (const p of publishers) p.close();
  await server.close();
  hub.closeAll();
  process.exit(0);
}

const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** Steps [from, from + count) of each session's replay, in real time: each recorded write as one socket read. */
async function feed(
  sessions: { io: SocketIo; receiver: SocketIoModule.ReadReceiver }[],
  steps: Buffer[][],
  phase: number[],
  from: number,
  count: number,
  stepMs: number,
): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    for (let s = 0; s < sessions.length; s++) {
      const { io, receiver } = sessions[s]!;
      for (const bytes of steps[phase[s]! + from + i]!) {
        // As a socket read: the bytes land in the shared read buffer, at most 64 KiB at a time.
        for (let at = 0; at < bytes.length; at += readBuffer.length) {
          const n = bytes.copy(readBuffer, 0, at, Math.min(at + readBuffer.length, bytes.length));
          io.handleRead(receiver, readBuffer.subarray(0, n));
        }
      }
    }
    await sleep(Math.max(0, t0 + (i + 1) * stepMs - performance.now()));
  }
}

/** The child process of players: resolves once all play; `stop` returns the messages they got. */
async function startPlayers(port: number, options: Options): Promise<{ stop(): Promise<number> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=source',
      import.meta.filename,
      '--players-of',
      String(port),
      '--streams',
      String(options.streams),
      '--players',
      String(options.players),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') throw new Error('players did not start');
  return {
    async stop() {
      child.stdin!.end();
      const last = await lines.next();
      return (JSON.parse(String(last.value)) as { messages: number }).messages;
    },
  };
}

await main();
