// One recording file, written by whole appends: each append (an fMP4
// fragment, a batch of FLV tags) is written completely or cut off again, so
// the file on disk always ends on an append boundary. The file is created
// with its first append after the header. A write error (a full disk)
// truncates it back to the last complete append, and a file left with
// nothing past its header is removed: whatever stays is playable.
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Bytes a stream's files may hold queued for the disk before further appends
 * are dropped (and counted). An append that comes while nothing is queued is
 * taken whatever its size: the fragmenter has already held it, and dropping
 * it would lose every append larger than this (a frame that large). What a
 * stream holds stays under this plus its largest append.
 */
export const DISK_QUEUE_MAX_BYTES = 32 * 1024 * 1024;

/** The bytes a stream's files (the open one and those still being written out) hold queued for the disk. */
export class DiskBacklog {
  bytes = 0;

  /** Whether an append of `bytes` may be queued now. */
  admits(bytes: number): boolean {
    return this.bytes === 0 || this.bytes + bytes <= DISK_QUEUE_MAX_BYTES;
  }
}

export interface SegmentFileEvents {
  /** Bytes were queued for the disk: an append, with the header before the first. */
  onQueued(bytes: number): void;
  /** The file failed (open or write); it has been truncated or removed and closed. */
  onError(err: NodeJS.ErrnoException): void;
}

export class SegmentFile {
  readonly path: string;
  /** Bytes on disk that form complete appends. */
  committed = 0;
  /** Appends dropped because the disk was this far behind. */
  dropped = 0;
  readonly closed: Promise<void>;
  private readonly events: SegmentFileEvents;
  private readonly backlog: DiskBacklog;
  private handle: FileHandle | undefined;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing = false;
  private ending = false;
  private failed = false;
  private removed = false;
  /** Bytes that make no playable file on their own (the init segment or FLV header). */
  private headerBytes = 0;
  /** The header, until the first append comes to follow it. */
  private heldHeader: Buffer | undefined;
  /** Whether the file was created: at the first append. */
  private created = false;
  private finish!: () => void;

  constructor(path: string, backlog: DiskBacklog, events: SegmentFileEvents) {
    this.path = path;
    this.backlog = backlog;
    this.events = events;
    this.closed = new Promise((resolve) => (this.finish = resolve));
  }

  get isFailed(): boolean {
    return this.failed;
  }

  /** Whether a clean end found nothing past the header and removed the file. */
  get isRemoved(): boolean {
    return this.removed;
  }

  /** Whether anything past the header was accepted: a dropped append on a file without media was its first. */
  get hasMedia(): boolean {
    return this.created;
  }

  /**
   * The file's header, written first. The file is created with the first
   * append, in one write with it, so that no crash leaves a file with a
   * header alone (FLV gathers its first tags for 200 ms); a file that fails
   * before anything follows its header is removed.
   */
  header(bytes: Buffer): void {
    this.headerBytes = bytes.length;
    this.heldHeader = bytes;
  }

  /**
   * Queues an append; false when it is not: the file has failed (or ends),
   * or the stream's files are DISK_QUEUE_MAX_BYTES behind (then it counts as dropped).
   */
  append(bytes: Buffer): boolean {
    if (this.failed || this.ending) return false;
    const header = this.created ? 0 : this.headerBytes;
    if (!this.backlog.admits(header + bytes.length)) {
      this.dropped++;
      return false;
    }
    if (!this.created) this.create();
    this.enqueue(bytes);
    this.pump();
    return true;
  }

  /** Writes what is queued, syncs it to disk and closes; a file never created (no append came) is reported removed. */
  end(): Promise<void> {
    this.ending = true;
    if (!this.created) {
      this.removed = true;
      this.finish();
    }
    this.pump();
    return this.closed;
  }

  private create(): void {
    this.created = true;
    if (this.heldHeader) {
      this.enqueue(this.heldHeader);
      this.heldHeader = undefined;
    }
    // 'wx': never overwrite a recording.
    mkdir(dirname(this.path), { recursive: true })
      .then(() => open(this.path, 'wx'))
      .then(
        (handle) => {
          this.handle = handle;
          this.pump();
        },
        (err: NodeJS.ErrnoException) => this.fail(err),
      );
  }

  private enqueue(bytes: Buffer): void {
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    this.backlog.bytes += bytes.length;
    this.events.onQueued(bytes.length);
  }

  /** What this file had queued leaves the backlog: written, or given up on a failure. */
  private dequeued(bytes: number): void {
    this.queuedBytes -= bytes;
    this.backlog.bytes -= bytes;
  }

  private pump(): void {
    if (this.writing || !this.handle || this.failed) return;
    if (this.queue.length === 0) {
      if (this.ending) void this.close();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.writing = true;
    this.writeAll(batch).then(
      () => {
        this.writing = false;
        this.pump();
      },
      (err: NodeJS.ErrnoException) => {
        this.writing = false;
        this.fail(err);
      },
    );
  }

  /** Writes a batch of appends; after a failure only the appends written whole count as committed. */
  private async writeAll(batch: Buffer[]): Promise<void> {
    const handle = this.handle!;
    const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
    let written = 0;
    try {
      // A short write (the disk filling up) goes on from where it stopped until it errors.
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written, this.committed + written);
        if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
        written += bytesWritten;
      }
    } finally {
      this.dequeued(data.length);
      for (const append of batch) {
        if (written < append.length) break;
        written -= append.length;
        this.committed += append.length;
      }
    }
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (this.failed) return;
    this.failed = true;
    this.queue = [];
    this.dequeued(this.queuedBytes);
    void this.discardTail().then(() => {
      this.events.onError(err);
      this.finish();
    });
  }

  /** Cuts a partial append off the end, or removes a file with nothing playable; never throws. */
  private async discardTail(): Promise<void> {
    const handle = this.handle;
    try {
      if (this.committed <= this.headerBytes) {
        await handle?.close();
        if (handle) await unlink(this.path);
        return;
      }
      await handle?.truncate(this.committed);
      await handle?.close();
    } catch {
      // The file may be gone or the disk unreadable: the recording has stopped either way.
    }
  }

  private async close(): Promise<void> {
    const handle = this.handle!;
    this.handle = undefined;
    try {
      // On disk before the file counts as done, so a power cut after a clean end loses nothing.
      await handle.datasync();
      await handle.close();
      // A header alone plays nothing: no file rather than an empty recording.
      if (this.committed <= this.headerBytes) {
        await unlink(this.path);
        this.removed = true;
      }
      this.finish();
    } catch (err) {
      this.handle = handle;
      this.fail(err as NodeJS.ErrnoException);
    }
  }
}
