// The load generator as the bench runs it: worker processes (loadgen-worker.ts)
// that each run a share of the connections (LoadGenerator's `share`), so that
// one event loop's delay is not what the bench measures at 500 × 1; this
// process starts them in step and merges what they count.
//
// A frame's latency is the receiving process's clock minus the sending one's
// stamp, and the two may be different processes (at 1 × 1000 the publisher is
// in one, its players in all). Every worker adopts this process's wall clock
// as an offset to the machine's monotonic clock (sei.ts adoptClock), so all
// stamp and read one clock; each reports how far its own was (clockOffsetUs).
import { fork, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FixtureSpec } from './fixture.ts';
import { isHls, zeroShareCounters, type GeneratorLoad, type LoadCounters, type LoadOptions, type ShareCounters } from './loadgen.ts';
import { wallMinusMonotonicMs } from './sei.ts';
import { Samples } from './stats.ts';

/** One process per core: the server under test shares them, and a busy generator process delays what it measures. */
export const DEFAULT_LOADGEN_PROCESSES = 2;

/** Event-loop utilization above which a generator process is said to have been the limit. */
export const GENERATOR_BUSY_LIMIT = 0.7;

export interface ProcessLoadOptions extends Omit<LoadOptions, 'runId' | 'share'> {
  /** Worker processes (default DEFAULT_LOADGEN_PROCESSES). */
  processes?: number;
}

/** What a worker needs to build its LoadGenerator: the options it can receive, and the parent's clock. */
interface WorkerSetup extends Omit<LoadOptions, 'fixture'> {
  fixture: { spec: FixtureSpec; path: string };
  wallMinusMonotonicMs: number;
}

export type WorkerRequest =
  | { op: 'setup'; setup: WorkerSetup }
  | { op: 'publish' | 'play' | 'begin' | 'end' | 'stopPublishing' | 'close' }
  | { op: 'finish'; sent: number[] };

export type WorkerReply = { ok: true; value: unknown } | { ok: false; error: string };

/** What one worker counted, returned by `finish`. */
export interface ShareResult {
  counters: ShareCounters;
  load: GeneratorLoad;
  latency: Float64Array;
  errors: string[];
}

/** A forked worker, asked one request at a time; its replies come in order. */
class Worker {
  private readonly child: ChildProcess;
  private readonly pending: { resolve: (value: unknown) => void; reject: (err: Error) => void }[] = [];
  private readonly exited: Promise<void>;

  constructor(index: number) {
    this.child = fork(new URL('./loadgen-worker.ts', import.meta.url), {
      // BENCH_LOADGEN_NODE_FLAGS: e.g. --cpu-prof --cpu-prof-dir=<dir> for a profile of each worker.
      execArgv: ['--conditions=source', ...(process.env.BENCH_LOADGEN_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [])],
      serialization: 'advanced', // structured clone: the latency samples go as a Float64Array
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.shift();
      if (reply.ok) waiter?.resolve(reply.value);
      else waiter?.reject(new Error(`load generator process ${index}: ${reply.error}`));
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        const err = new Error(`load generator process ${index} exited (${signal ?? `code ${code}`})`);
        for (const waiter of this.pending.splice(0)) waiter.reject(err);
        resolve();
      }),
    );
  }

  request<T = void>(req: WorkerRequest): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ resolve: resolve as (value: unknown) => void, reject });
      this.child.send(req);
    });
  }

  /** Lets the worker end once its connections closed (at most a second later), or kills it. */
  async end(kill: boolean): Promise<void> {
    if (kill) this.child.kill();
    else if (this.child.connected) this.child.disconnect();
    await this.exited;
  }
}

export class LoadProcesses {
  readonly options: ProcessLoadOptions;
  readonly latency = new Samples();
  readonly counters: LoadCounters = mergeCounters([]);
  /** First few failure messages of every process, for the report. */
  readonly errors: string[] = [];
  private workers: Worker[] = [];

  constructor(options: ProcessLoadOptions) {
    this.options = options;
  }

  private all<T = void>(req: WorkerRequest): Promise<T[]> {
    return Promise.all(this.workers.map((w) => w.request<T>(req)));
  }

  /** Starts the workers, then every publisher, then every player. */
  async start(): Promise<void> {
    const { fixture, processes = DEFAULT_LOADGEN_PROCESSES, connectConcurrency = 50, ...options } = this.options;
    const runId = Math.random().toString(36).slice(2, 8);
    this.workers = Array.from({ length: processes }, (_, index) => new Worker(index));
    await Promise.all(
      this.workers.map((w, index) =>
        w.request({
          op: 'setup',
          setup: {
            ...options,
            runId,
            share: { index, of: processes },
            connectConcurrency: Math.ceil(connectConcurrency / processes),
            fixture: { spec: fixture.spec, path: fixture.path },
            wallMinusMonotonicMs: wallMinusMonotonicMs(),
          },
        }),
      ),
    );
    await this.all({ op: 'publish' });
    // Let every stream get its first GOP to the server before anyone plays.
    await sleep(500);
    await this.all({ op: 'play' });
  }

  /** Starts the measure window: latency samples, each process's CPU and event loop. */
  async beginMeasure(): Promise<void> {
    await this.all({ op: 'begin' });
  }

  async endMeasure(): Promise<void> {
    await this.all({ op: 'end' });
  }

  /** Stops publishing, lets in-flight frames arrive, counts what never came, merges, and ends the workers. */
  async stop(drainMs = 1500): Promise<void> {
    try {
      const sent = new Array<number>(this.options.streams).fill(0);
      for (const share of await this.all<[number, number][]>({ op: 'stopPublishing' })) for (const [stream, n] of share) sent[stream] = n;
      await sleep(isHls(this.options.playProtocol) ? Math.max(drainMs, 5000) : drainMs);
      const shares = await this.all<ShareResult>({ op: 'finish', sent });
      Object.assign(this.counters, mergeCounters(shares));
      for (const share of shares) {
        this.latency.pushAll(share.latency);
        this.errors.push(...share.errors.slice(0, 10 - this.errors.length));
      }
      await this.all({ op: 'close' });
      await Promise.all(this.workers.map((w) => w.end(false)));
    } finally {
      await Promise.all(this.workers.map((w) => w.end(true)));
    }
  }
}

/** The processes' counts summed (the largest queue is the largest of any), with each process's load. */
function mergeCounters(shares: Pick<ShareResult, 'counters' | 'load'>[]): LoadCounters {
  const merged: LoadCounters = {
    ...zeroShareCounters(),
    generatorCpuPercent: shares.length > 0 ? 0 : NaN,
    generatorEventLoopUtilization: shares.length > 0 ? 0 : NaN,
    generatorLoopDelayP99Ms: shares.length > 0 ? 0 : NaN,
    generatorProcesses: shares.map((s) => s.load),
  };
  for (const { counters: c, load } of shares) {
    merged.publishersUp += c.publishersUp;
    merged.playersUp += c.playersUp;
    merged.connectFailures += c.connectFailures;
    merged.droppedConnections += c.droppedConnections;
    for (const [reason, n] of Object.entries(c.failureReasons)) merged.failureReasons[reason] = (merged.failureReasons[reason] ?? 0) + n;
    merged.playersWithoutMedia += c.playersWithoutMedia;
    merged.videoFramesSent += c.videoFramesSent;
    merged.videoFramesReceived += c.videoFramesReceived;
    merged.framesLost += c.framesLost;
    merged.framesOutOfOrder += c.framesOutOfOrder;
    merged.publisherBackpressure += c.publisherBackpressure;
    merged.publisherMaxQueuedBytes = Math.max(merged.publisherMaxQueuedBytes, c.publisherMaxQueuedBytes);
    merged.generatorCpuPercent += load.cpuPercent;
    merged.generatorEventLoopUtilization = Math.max(merged.generatorEventLoopUtilization, load.eventLoopUtilization);
    merged.generatorLoopDelayP99Ms = Math.max(merged.generatorLoopDelayP99Ms, load.loopDelayP99Ms);
  }
  return merged;
}
