import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { FLV_FILE_HEADER, flvTag } from '../flv/mux.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { Subscriber } from '../hub/subscriber.ts';
import type { Logger } from '../telemetry/logger.ts';
import { RecordingTrace } from '../telemetry/tracing.ts';

export interface RecorderOptions {
  hub: StreamHub;
  storageDir: string;
  logger: Logger;
}

/** What telemetry reads about recording; plain counters, read when scraped. */
export interface RecorderStats {
  filesOpened: number;
  bytesWritten: number;
  /** Disk errors (open, write, close): the recording stops, the stream goes on. */
  errors: number;
}

/**
 * Records every published stream as FLV under `<storageDir>/<app>/<key>/`.
 * FLV needs no trailer, so a publisher that vanishes mid-stream still leaves a
 * playable file. Recordings are never deleted here: retention belongs to
 * whoever owns the volume.
 */
export class Recorder {
  readonly stats: RecorderStats = { filesOpened: 0, bytesWritten: 0, errors: 0 };
  private readonly options: RecorderOptions;
  private readonly active = new Set<FlvFileWriter>();
  private readonly onPublish = (stream: Stream): void => this.record(stream);

  constructor(options: RecorderOptions) {
    this.options = options;
    options.hub.on('publish', this.onPublish);
  }

  /** Stops recording new streams and waits for open files to be flushed. */
  async close(): Promise<void> {
    this.options.hub.off('publish', this.onPublish);
    await Promise.all([...this.active].map((writer) => writer.finish()));
  }

  private record(stream: Stream): void {
    const dir = join(this.options.storageDir, stream.app, stream.key);
    // Colons are not portable in file names; the rest of ISO 8601 sorts and reads well.
    const path = join(dir, `${stream.startTime.toISOString().replace(/:/g, '-')}.flv`);
    const logger = this.options.logger.child({ stream: stream.id, path });
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      this.stats.errors++;
      logger.error({ err }, 'recording not started: cannot create directory');
      return;
    }
    const writer = new FlvFileWriter(path, stream, this.stats, logger);
    this.active.add(writer);
    writer.finished.then(() => this.active.delete(writer));
    this.stats.filesOpened++;
    stream.subscribe(writer, performance.now());
    logger.info('recording started');
  }
}

const FLUSH_MS = 200;

/** One recording: a hub subscriber that appends every packet's FLV tag to a file. */
class FlvFileWriter implements Subscriber {
  readonly kind = 'recorder';
  /** What was accepted from the publisher is never skipped. */
  readonly delivery = 'lossless';
  readonly finished: Promise<void>;
  private readonly file: WriteStream;
  private readonly stream: Stream;
  private readonly stats: RecorderStats;
  private readonly logger: Logger;
  private readonly trace: RecordingTrace;
  private failed = false;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(path: string, stream: Stream, stats: RecorderStats, logger: Logger) {
    this.stream = stream;
    this.stats = stats;
    this.logger = logger;
    this.trace = new RecordingTrace(stream, path);
    // 'wx': never overwrite a recording, even if two publishes share a millisecond.
    this.file = createWriteStream(path, { flags: 'wx' });
    this.finished = new Promise((resolve) => this.file.once('close', resolve));
    this.file.on('error', (err) => this.fail(err));
  }

  begin(): void {
    // The tracks are not known yet at publish time; both flags set is what
    // encoders write too, and demuxers probe the tags that follow.
    this.append(FLV_FILE_HEADER(true, true));
  }

  pendingBytes(): number {
    return this.file.writableLength;
  }

  write(packet: MediaPacket): void {
    this.append((packet.flvTag ??= flvTag(packet.kind, packet.timestamp, packet.body)));
  }

  close(): void {
    this.flush();
    if (!this.file.writableEnded) {
      this.file.end(() => {
        this.trace.end(this.stream, this.file.bytesWritten);
        this.logger.info({ bytes: this.file.bytesWritten }, 'recording finished');
      });
    }
  }

  finish(): Promise<void> {
    this.stream.unsubscribe(this);
    this.close();
    return this.finished;
  }

  /**
   * Packets are gathered for up to FLUSH_MS and written with one writev: each
   * file write is a trip through libuv's thread pool, which per packet would
   * cost more than relaying it. Closing flushes at once, so a publisher that
   * drops leaves everything it sent on disk.
   */
  private append(bytes: Buffer): void {
    if (this.failed || this.file.writableEnded) return;
    this.stats.bytesWritten += bytes.length;
    if (this.flushTimer === undefined) {
      this.file.cork();
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
    }
    this.file.write(bytes);
  }

  private flush(): void {
    if (this.flushTimer === undefined) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.file.uncork();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stats.errors++;
    this.trace.end(this.stream, this.file.bytesWritten, err);
    this.logger.error({ err }, 'recording stopped after a disk error; the stream goes on');
    this.stream.unsubscribe(this);
    clearTimeout(this.flushTimer);
    this.file.destroy();
  }
}
