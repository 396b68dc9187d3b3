// One process's share of the load generator: of N publishers replaying a
// fixture in real time and M players per stream, the connections whose
// number falls to this process (loadgen-processes.ts runs several and merges
// what they count). A scheduler tick every few ms sends every audio and
// video packet that is due, each with its own socket write, as an encoder
// produces them (see rtmp-peer.ts for how the publishers and players behave
// on the wire); the only per-frame allocation is the wire bytes (each probed
// video body is built in one reused buffer).
import { get as httpGet, type IncomingMessage } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FlvDemuxer } from '../../rtmpd/src/flv/demux.ts';
import { MessageType } from '../../rtmpd/src/rtmp/wire/message-types.ts';
import { KEYFRAME_INTERVAL_SECONDS, type Fixture } from './fixture.ts';
import { HlsPlayer } from './hls-player.ts';
import { failureReason, PeerFailure, RtmpPeer, type PublisherStyle } from './rtmp-peer.ts';
import type { PlayProtocol } from './scenarios.ts';
import { readProbe, readProbeInSample, SEI_PREFIX_SIZE, wallClockMicros, withProbe, type Probe } from './sei.ts';
import { Samples } from './stats.ts';

export interface LoadOptions {
  rtmpBase: string;
  httpBase: string | undefined;
  /** Where players connect when not where publishers do: another pod of a fleet, which relays the streams. */
  players?: { rtmpBase: string; httpBase: string | undefined };
  /** Names the run's stream keys, the same in every process. */
  runId: string;
  streams: number;
  playersPerStream: number;
  /**
   * The connections this process runs: publisher i and player j of stream i
   * (connection i × playersPerStream + j among the players) when their
   * number modulo `of` is `index`.
   */
  share: { index: number; of: number };
  playProtocol: PlayProtocol;
  fixture: Fixture;
  /** How publishers send: chunk size, Nagle, writes. */
  publisherStyle: PublisherStyle;
  /** Connections opened at once while ramping up. */
  connectConcurrency?: number;
  /** Scheduler period (default 5 ms): each tick sends the packets that came due since the last. */
  tickMs?: number;
}

/** What one generator process counts; LoadCounters sums them over the processes. */
export interface ShareCounters {
  publishersUp: number;
  playersUp: number;
  /** Connect, publish or play refused or timed out. */
  connectFailures: number;
  /** Connections the server closed or reset before the end. */
  droppedConnections: number;
  /** Failures and drops by who and why: `player connect: reset by the server`, `publisher live: closed by the server`. */
  failureReasons: Record<string, number>;
  /** Players that received no probed video frame at all. */
  playersWithoutMedia: number;
  videoFramesSent: number;
  videoFramesReceived: number;
  /** Frames missing in a player's sequence (gaps plus an unreceived tail). */
  framesLost: number;
  /** Frames that arrived with a sequence number at or below one already seen. */
  framesOutOfOrder: number;
  /** Packets written while bytes of earlier ones were still unsent: the server is not reading fast enough. */
  publisherBackpressure: number;
  publisherMaxQueuedBytes: number;
}

/** How busy one generator process was over the measure window. */
export interface GeneratorLoad {
  /** CPU, user + kernel, % of one core. */
  cpuPercent: number;
  /** The kernel's part of it: the socket writes and reads. */
  cpuSystemPercent: number;
  /** Share of the window its event loop was busy, 0..1. */
  eventLoopUtilization: number;
  /**
   * p99 of the intervals at which its event loop ran a 10 ms timer, ms, as
   * monitorEventLoopDelay counts them: the period included, so an idle loop reads 10–13.
   */
  loopDelayP99Ms: number;
  /** How far its own wall clock was from the parent's, which it adopted for the probes, µs. */
  clockOffsetUs: number;
}

export interface LoadCounters extends ShareCounters {
  /** All generator processes' CPU over the measure window, % of one core. */
  generatorCpuPercent: number;
  /** The busiest process's event-loop utilization and the worst loop-delay p99. */
  generatorEventLoopUtilization: number;
  generatorLoopDelayP99Ms: number;
  generatorProcesses: GeneratorLoad[];
}

const noop = (): void => {};

/** What RtmpPeer's connect, publish or play threw, as the bench counts it. */
const reasonOf = (err: unknown): string => (err instanceof PeerFailure ? err.reason : String(err));

class Publisher {
  readonly stream: number;
  readonly key: string;
  peer: RtmpPeer | undefined;
  /** performance.now() at which loop 0, timestamp 0 is due. */
  startAt = 0;
  /** Delay of this publisher's first frame, so keyframes of different streams do not coincide. */
  readonly phaseMs: number;
  loop = 0;
  index = 0;
  nextDue = Infinity;
  seq = 0;
  active = false;
  constructor(stream: number, key: string, phaseMs: number) {
    this.stream = stream;
    this.key = key;
    this.phaseMs = phaseMs;
  }
}

class Player {
  readonly stream: number;
  /** The stream key it plays. */
  readonly key: string;
  /** How it plays: the scenario's protocol, or RTMP and HTTP-FLV in turn for 'mixed'. */
  readonly protocol: PlayProtocol;
  lastSeq = -1;
  received = 0;
  lost = 0;
  outOfOrder = 0;
  close: () => void = noop;
  constructor(stream: number, key: string, protocol: PlayProtocol) {
    this.stream = stream;
    this.key = key;
    this.protocol = protocol;
  }
}

/** Counters before anything happened: a share's start, and the sum of shares' start. */
export function zeroShareCounters(): ShareCounters {
  return {
    publishersUp: 0,
    playersUp: 0,
    connectFailures: 0,
    droppedConnections: 0,
    failureReasons: {},
    playersWithoutMedia: 0,
    videoFramesSent: 0,
    videoFramesReceived: 0,
    framesLost: 0,
    framesOutOfOrder: 0,
    publisherBackpressure: 0,
    publisherMaxQueuedBytes: 0,
  };
}

export class LoadGenerator {
  readonly options: LoadOptions;
  readonly latency = new Samples();
  readonly counters: ShareCounters = zeroShareCounters();
  readonly load: GeneratorLoad = {
    cpuPercent: NaN,
    cpuSystemPercent: NaN,
    eventLoopUtilization: NaN,
    loopDelayP99Ms: NaN,
    clockOffsetUs: 0,
  };
  /** First few failure messages, for the report. */
  readonly errors: string[] = [];
  private readonly publishers: Publisher[] = [];
  private readonly players: Player[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private measuring = false;
  private stopping = false;
  private readonly probe: Probe = { seq: 0, micros: 0 };
  private windowStart: { cpu: NodeJS.CpuUsage; elu: ReturnType<typeof performance.eventLoopUtilization>; at: number } | undefined;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  /** Where each probed frame is built before it is sent: the largest frame and its SEI fit. */
  private readonly probedBody: Buffer;

  constructor(options: LoadOptions) {
    this.options = options;
    const largest = Math.max(...options.fixture.frames.map((f) => f.body.length));
    this.probedBody = Buffer.allocUnsafeSlow(largest + SEI_PREFIX_SIZE);
  }

  private get playerBase(): { rtmpBase: string; httpBase: string | undefined } {
    return this.options.players ?? this.options;
  }

  /** A connection that never got to publish or play; `reason` as failureReason says it. */
  private fail(what: string, role: string, reason: string): void {
    this.counters.connectFailures++;
    this.countReason(role, reason);
    if (this.errors.length < 10) this.errors.push(`${what}: ${reason}`);
  }

  /** A connection that published or played and ended before the run did. */
  private dropped(what: string, role: string, reason: string): void {
    if (this.stopping) return;
    this.counters.droppedConnections++;
    this.countReason(role, reason);
    if (this.errors.length < 10) this.errors.push(`${what}: ${reason}`);
  }

  private countReason(role: string, reason: string): void {
    const key = `${role} ${reason}`;
    this.counters.failureReasons[key] = (this.counters.failureReasons[key] ?? 0) + 1;
  }

  private owns(connection: number): boolean {
    return connection % this.options.share.of === this.options.share.index;
  }

  private streamKey(stream: number): string {
    return `bench-${this.options.runId}-${stream}`;
  }

  /** Connects and starts this share's publishers. */
  async startPublishers(): Promise<void> {
    const { streams } = this.options;
    // Independent encoders put their keyframes at unrelated moments: spread
    // the publishers' first frames over one keyframe interval.
    const phaseStepMs = (KEYFRAME_INTERVAL_SECONDS * 1000) / streams;
    for (let i = 0; i < streams; i++) if (this.owns(i)) this.publishers.push(new Publisher(i, this.streamKey(i), i * phaseStepMs));
    this.ticker = setInterval(() => this.tick(), this.options.tickMs ?? 5);
    await this.parallel(this.publishers, (p) => this.startPublisher(p));
  }

  /** Connects and starts this share's players, once every stream is published. */
  async startPlayers(): Promise<void> {
    const { streams, playersPerStream } = this.options;
    for (let i = 0; i < streams; i++)
      for (let j = 0; j < playersPerStream; j++)
        if (this.owns(i * playersPerStream + j)) this.players.push(new Player(i, this.streamKey(i), this.playerProtocol(j)));
    await this.parallel(this.players, (pl) => this.startPlayer(pl));
  }

  /**
   * Player `j` of a stream plays over the scenario's protocol; in a mixed
   * one, over RTMP and HTTP-FLV by turns of two (players 0 and 1 RTMP, 2 and
   * 3 HTTP-FLV, ...), so that the worker processes, which take connections
   * in turn, each get players of both.
   */
  private playerProtocol(j: number): PlayProtocol {
    const { playProtocol } = this.options;
    if (playProtocol !== 'mixed') return playProtocol;
    return Math.floor(j / 2) % 2 === 0 ? 'rtmp' : 'http-flv';
  }

  private async parallel<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) await fn(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(items.length, this.options.connectConcurrency ?? 50) }, worker));
  }

  private async startPublisher(p: Publisher): Promise<void> {
    try {
      const peer = await RtmpPeer.connect(`${this.options.rtmpBase}/${p.key}`, this.options.publisherStyle);
      p.peer = peer;
      peer.onClose = (err) => {
        p.active = false;
        // Before it is live, the failure is counted where publish() throws.
        if (peer.step === 'live') this.dropped(`publisher ${p.key}`, 'publisher', failureReason('live', err));
      };
      await peer.publish();
      for (const h of this.options.fixture.headers) peer.sendMedia(h.kind === 'video' ? MessageType.video : MessageType.audio, 0, h.body);
      p.startAt = performance.now() + p.phaseMs;
      p.nextDue = p.startAt;
      p.active = true;
      this.counters.publishersUp++;
    } catch (err) {
      p.peer?.close();
      this.fail(`publisher ${p.key}`, 'publisher', reasonOf(err));
    }
  }

  private async startPlayer(pl: Player): Promise<void> {
    if (pl.protocol === 'http-flv') return this.startFlvPlayer(pl);
    if (isHls(this.options.playProtocol)) return this.startHlsPlayer(pl);
    try {
      const peer = await RtmpPeer.connect(`${this.playerBase.rtmpBase}/${pl.key}`, undefined);
      pl.close = () => peer.close();
      peer.onClose = (err) => {
        // Before it is live, the failure is counted where play() throws.
        if (peer.step === 'live') this.dropped(`player of ${pl.key}`, 'player', failureReason('live', err));
      };
      await peer.play((typeId, _ts, body) => {
        if (typeId === MessageType.video) this.onVideo(pl, body);
      });
      this.counters.playersUp++;
    } catch (err) {
      pl.close();
      this.fail(`player of ${pl.key}`, 'player', reasonOf(err));
    }
  }

  private startFlvPlayer(pl: Player): Promise<void> {
    const base = this.playerBase.httpBase;
    if (!base) {
      this.fail(`player of ${pl.key}`, 'HTTP-FLV player', 'the server has no HTTP-FLV');
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const req = httpGet(`${base}/${pl.key}.flv`, { agent: false, timeout: 10_000 }, (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          this.fail(`player of ${pl.key}`, 'HTTP-FLV player', `HTTP ${res.statusCode}`);
          res.resume();
          resolve();
          return;
        }
        this.counters.playersUp++;
        resolve();
        const demuxer = new FlvDemuxer();
        res.on('data', (chunk: Buffer) => {
          for (const tag of demuxer.push(chunk)) if (tag.kind === 'video') this.onVideo(pl, tag.body);
        });
        res.on('error', () => {});
        res.on('close', () => this.dropped(`HTTP-FLV player of ${pl.key}`, 'HTTP-FLV player', 'live: closed by the server'));
      });
      pl.close = () => req.destroy();
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        if (this.counters.playersUp > 0 && pl.received > 0) return;
        this.fail(`player of ${pl.key}`, 'HTTP-FLV player', err.message);
        resolve();
      });
    });
  }

  private async startHlsPlayer(pl: Player): Promise<void> {
    const base = this.playerBase.httpBase;
    if (!base) return this.fail(`player of ${pl.key}`, 'HLS player', 'the server has no HTTP');
    const player = new HlsPlayer({
      playlistUrl: `${base}/${pl.key}/index.m3u8`,
      lowLatency: this.options.playProtocol === 'llhls',
      onVideoSample: (sample) => this.onProbe(pl, readProbeInSample(sample, this.probe)),
      onError: (err) => this.dropped(`HLS player of ${pl.key}`, 'HLS player', err.message),
    });
    pl.close = () => player.stop();
    try {
      await player.start();
      this.counters.playersUp++;
    } catch (err) {
      this.fail(`player of ${pl.key}`, 'HLS player', (err as Error).message);
    }
  }

  private onVideo(pl: Player, body: Buffer): void {
    this.onProbe(pl, readProbe(body, this.probe));
  }

  /** Counts a frame whose probe was read into this.probe (found: whether it had one). */
  private onProbe(pl: Player, found: boolean): void {
    const probe = this.probe;
    if (!found) return;
    if (this.measuring) this.latency.push((wallClockMicros() - probe.micros) / 1000);
    pl.received++;
    this.counters.videoFramesReceived++;
    if (pl.lastSeq >= 0) {
      if (probe.seq <= pl.lastSeq) {
        pl.outOfOrder++;
        this.counters.framesOutOfOrder++;
        return;
      }
      const gap = probe.seq - pl.lastSeq - 1;
      pl.lost += gap;
      this.counters.framesLost += gap;
    }
    pl.lastSeq = probe.seq;
  }

  /**
   * Sends every packet that came due, each with its own write, in timestamp
   * order per publisher (audio and video interleaved as an encoder muxes
   * them). Publishers start at different moments, so their packets are
   * spread over the frame interval instead of bunching.
   */
  private tick(): void {
    const now = performance.now();
    const { frames, loopMs } = this.options.fixture;
    for (const p of this.publishers) {
      if (!p.active || p.nextDue > now) continue;
      const peer = p.peer!;
      let loopStart = p.startAt + p.loop * loopMs;
      do {
        // What the socket still holds from earlier packets: the server is not keeping up.
        const queued = peer.pendingBytes;
        if (queued > 0) {
          this.counters.publisherBackpressure++;
          if (queued > this.counters.publisherMaxQueuedBytes) this.counters.publisherMaxQueuedBytes = queued;
        }
        const frame = frames[p.index]!;
        const ts = (p.loop * loopMs + frame.timestamp) >>> 0;
        if (frame.kind === 'video') {
          // sendMedia copies the body into the message's chunks: one probed body buffer serves every frame.
          const body = frame.probe ? withProbe(frame.body, p.seq++, wallClockMicros(), this.probedBody) : frame.body;
          peer.sendMedia(MessageType.video, ts, body);
          this.counters.videoFramesSent++;
        } else peer.sendMedia(MessageType.audio, ts, frame.body);
        if (++p.index === frames.length) {
          p.index = 0;
          p.loop++;
          loopStart += loopMs;
        }
        p.nextDue = loopStart + frames[p.index]!.timestamp;
      } while (p.nextDue <= now);
    }
  }

  /** Starts the measure window: latency samples, generator CPU. */
  beginMeasure(): void {
    this.measuring = true;
    this.loopDelay.reset();
    this.loopDelay.enable();
    this.windowStart = { cpu: process.cpuUsage(), elu: performance.eventLoopUtilization(), at: performance.now() };
  }

  endMeasure(): void {
    this.measuring = false;
    this.loopDelay.disable();
    const w = this.windowStart;
    if (!w) return;
    const cpu = process.cpuUsage(w.cpu);
    const ms = performance.now() - w.at;
    this.load.cpuPercent = ((cpu.user + cpu.system) / 1000 / ms) * 100;
    this.load.cpuSystemPercent = (cpu.system / 1000 / ms) * 100;
    this.load.eventLoopUtilization = performance.eventLoopUtilization(w.elu).utilization;
    this.load.loopDelayP99Ms = this.loopDelay.percentile(99) / 1e6;
  }

  /** Stops publishing; returns each of this share's streams with the number of probed frames it sent. */
  stopPublishing(): [stream: number, sent: number][] {
    for (const p of this.publishers) p.active = false;
    if (isHls(this.options.playProtocol)) {
      // A segment ends at the next keyframe or at the stream's end: end the streams so HLS players get their last frames.
      for (const p of this.publishers) {
        if (p.peer) p.peer.onClose = noop;
        p.peer?.close();
      }
    }
    return this.publishers.map((p) => [p.stream, p.seq]);
  }

  /**
   * Once in-flight frames had time to arrive: counts what never came, from
   * `sent[stream]`, the probed frames each stream's publisher sent.
   * Connections that end from now on are not counted as dropped.
   */
  finish(sent: number[]): void {
    this.stopping = true;
    clearInterval(this.ticker);
    for (const pl of this.players) {
      if (pl.received === 0) {
        this.counters.playersWithoutMedia++;
        continue;
      }
      const tail = sent[pl.stream]! - 1 - pl.lastSeq;
      if (tail > 0) {
        pl.lost += tail;
        this.counters.framesLost += tail;
      }
    }
  }

  close(): void {
    for (const pl of this.players) pl.close();
    for (const p of this.publishers) p.peer?.close();
  }
}

export const isHls = (protocol: PlayProtocol): boolean => protocol === 'hls' || protocol === 'llhls';

/** Opens `count` RTMP connections that only handshake and connect, for memory per idle connection. */
export async function openIdleConnections(
  rtmpBase: string,
  count: number,
  concurrency = 50,
): Promise<{ clients: RtmpPeer[]; failures: number; errors: string[] }> {
  const clients: RtmpPeer[] = [];
  const errors: string[] = [];
  let failures = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < count) {
      try {
        clients.push(await RtmpPeer.connect(`${rtmpBase}/idle`, undefined));
      } catch (err) {
        failures++;
        if (errors.length < 5) errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, worker));
  return { clients, failures, errors };
}
