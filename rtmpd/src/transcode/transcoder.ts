// The ffmpeg of one source stream, in one explicit state at a time:
//   starting → running → (ffmpeg ends) backoff → starting → ... → stopped
// starting: ffmpeg was spawned and has not published a rendition yet;
// running: a rendition is live. An ffmpeg that cannot be spawned or ends
// while the source is live is restarted after a capped, jittered backoff.
// stop() (the source ended, rtmpd stops) sends SIGTERM, and SIGKILL after
// STOP_DEADLINE_MS. ffmpeg's stderr is never held whole: its tail
// (StderrTail) is kept for the error of the exit and its log line. Its media
// goes through pipes (stdin, and one per rendition), which `plumb` connects
// to the hub at each start.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { StderrTail } from '../ffmpeg/stderr-tail.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FIRST_OUTPUT_FD } from './ffmpeg-args.ts';
import type { TranscodeFailure, TranscodeState, TranscodeView } from './transcode-view.ts';

/** The first restart's delay; each failure in a row doubles it up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** An ffmpeg that ran this long was a success: the next failure is retried after the first delay again. */
const HEALTHY_RUN_MS = 30_000;
/** How long ffmpeg has after SIGTERM (it flushes its outputs) before SIGKILL. */
export const STOP_DEADLINE_MS = 5000;
/** What of the tail goes into last_error and the log line. */
const ERROR_TAIL_CHARS = 1024;

export interface TranscoderOptions {
  ffmpegPath: string;
  args: readonly string[];
  /** The renditions as the API shows them, in the order of their output pipes. */
  renditions: TranscodeView['renditions'];
  /** Connects a started ffmpeg's pipes: what it reads the source from, and what it writes each rendition to. */
  plumb: (pipes: TranscodePipes) => void;
  log: Logger;
  onStart: () => void;
  onFailure: (reason: TranscodeFailure) => void;
}

export interface TranscodePipes {
  /** ffmpeg's stdin. */
  input: Writable;
  /** One per rendition, in the order of TranscoderOptions.renditions. */
  outputs: Readable[];
}

export class Transcoder {
  state: TranscodeState = 'backoff';
  starts = 0;
  lastError: string | undefined;
  private child: ChildProcess | undefined;
  private stderr = new StderrTail();
  private failuresInRow = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly o: TranscoderOptions;

  constructor(o: TranscoderOptions) {
    this.o = o;
  }

  /** The child's pid while one runs (tests check that it is gone). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  view(): TranscodeView {
    return { state: this.state, renditions: this.o.renditions, starts: this.starts, last_error: this.lastError ?? null };
  }

  start(): void {
    if (this.state !== 'backoff') return;
    this.starts++;
    this.o.onStart();
    this.state = 'starting';
    this.startedAt = performance.now();
    this.stderr = new StderrTail();
    const outputs = this.o.renditions.map(() => 'pipe' as const);
    const child = spawn(this.o.ffmpegPath, this.o.args, { stdio: ['pipe', 'ignore', 'pipe', ...outputs] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (this.child !== child || child.pid !== undefined) return;
      this.fail('spawn_failed', `cannot run ${this.o.ffmpegPath}: ${err.code ?? err.message}`);
    });
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.fail(signal ? 'killed' : 'exited', `ffmpeg ${how}`);
    });
    if (child.pid === undefined) return;
    this.o.log.info({ pid: child.pid, attempt: this.starts }, 'transcode: ffmpeg started');
    this.o.plumb({ input: child.stdin!, outputs: child.stdio.slice(FIRST_OUTPUT_FD) as Readable[] });
  }

  /** A rendition of this transcode was published: ffmpeg works. */
  renditionLive(): void {
    if (this.state !== 'starting') return;
    this.state = 'running';
    this.o.log.info({ pid: this.child?.pid }, 'transcode: running');
  }

  /** The source ended or rtmpd stops: SIGTERM, then SIGKILL past the deadline; resolves once ffmpeg is gone. */
  stop(): Promise<void> {
    if (this.state === 'stopped') return this.exited;
    this.state = 'stopped';
    clearTimeout(this.timer);
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      void this.exited.then(() => clearTimeout(kill));
    }
    this.o.log.info({ starts: this.starts }, 'transcode: stopped');
    return this.exited;
  }

  /** Kills ffmpeg at once: rtmpd is exiting and cannot wait, or ffmpeg stopped reading its source (it restarts). */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private fail(reason: TranscodeFailure, what: string): void {
    if (this.state === 'stopped' || this.state === 'backoff') return;
    this.child = undefined;
    this.o.onFailure(reason);
    const tail = this.stderr.text(ERROR_TAIL_CHARS);
    this.lastError = tail ? `${what}: ${tail}` : what;
    if (performance.now() - this.startedAt >= HEALTHY_RUN_MS) this.failuresInRow = 0;
    this.failuresInRow++;
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(this.failuresInRow - 1, 20)) * (0.8 + Math.random() * 0.4);
    this.state = 'backoff';
    this.o.log.warn({ reason, err: this.lastError, retryInSeconds: Math.round(delay / 100) / 10 }, 'transcode: ffmpeg ended; restarting');
    this.timer = setTimeout(() => this.start(), delay);
  }
}
