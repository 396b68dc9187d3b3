// Retention of recordings, in the background: by age (--recording-max-age-hours
// or a rule's maxAgeHours), by the total size of the streams a rule matches
// (its maxBytes, e.g. per app) and by the total under --storage-dir
// (--recording-max-bytes). Oldest first, and never a file being written.
// A sweep reads the ledger (recording-ledger.ts), not the storage directory:
// a sweep after every file that closes would otherwise walk it continuously
// on a fleet of cameras (1,000 publishers, 100,000 files kept).
import { unlink } from 'node:fs/promises';
import type { Config, RecordingRule } from '../config.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RecordingFile } from './catalog.ts';
import { RecordingLedger, type LedgerFile, type LedgerStream } from './recording-ledger.ts';

export type RetentionConfig = Pick<Config, 'recordingMaxAgeHours' | 'recordingMaxBytes' | 'recordingRules'>;

export interface RetentionOptions {
  storageDir: string;
  /** Read at every sweep (these options change live). */
  config: RetentionConfig;
  /** Files being written now, by path, with their bytes so far. */
  writing: () => ReadonlyMap<string, number>;
  logger: Logger;
}

export interface RetentionStats {
  deletedFiles: number;
  deletedBytes: number;
}

export type DeleteReason = 'age' | 'rule_size' | 'volume_size';

interface Deleted {
  file: RecordingFile;
  reason: DeleteReason;
}

const HOUR_MS = 3_600_000;
/** A sweep runs this often, and after every recording file that closes (fileClosed). */
const SWEEP_MS = 60_000;
/**
 * The whole storage directory is walked at the first sweep and then this
 * often, to take in files added, changed or removed by hand; after a delete
 * failed, at the next sweep a minute or more after the last walk.
 */
const WALK_MS = 15 * 60_000;

export class Retention {
  readonly stats: RetentionStats = { deletedFiles: 0, deletedBytes: 0 };
  private readonly options: RetentionOptions;
  /** Held only while a limit is set: a server that keeps everything holds no list of its files and walks nothing. */
  private ledger: RecordingLedger | undefined;
  private readonly timer: NodeJS.Timeout;
  /** The sweep time of the last walk. */
  private walkedAt: number | undefined;
  private deleteFailed = false;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(options: RetentionOptions) {
    this.options = options;
    this.timer = setInterval(() => this.request(), SWEEP_MS).unref();
  }

  /** Asks for a sweep soon; sweeps never overlap (one more runs after the current one if asked meanwhile). */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.sweep()
      .catch((err: unknown) => this.options.logger.error({ err }, 'retention sweep failed'))
      .then(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  /** The recorder wrote `path` whole and closed it: a sweep soon takes it in (without a walk) and keeps the budgets. */
  fileClosed(path: string): void {
    this.ledger?.closed(path);
    this.request();
  }

  /** Takes out a file deleted elsewhere (through the API), so the size budgets stop counting it at once. */
  forget(path: string): void {
    this.ledger?.forget(path);
  }

  /** One pass over the ledger; returns the files deleted, with why. */
  async sweep(now = Date.now()): Promise<Deleted[]> {
    const { config } = this.options;
    // The limits change live: the ledger is dropped with the last and walked for anew with the next.
    if (!limitsSet(config)) {
      this.ledger = this.walkedAt = undefined;
      return [];
    }
    const ledger = (this.ledger ??= new RecordingLedger(this.options.storageDir));
    if (this.walkDue(now)) {
      this.walkedAt = now;
      this.deleteFailed = false;
      await ledger.walk();
    }
    const writing = this.options.writing();
    await ledger.follow(writing, now);
    const deleted: Deleted[] = [];
    const remove = (file: LedgerFile, reason: DeleteReason) => this.remove(ledger, file, reason, writing, deleted);
    const ruleOf = rulesByStream(config.recordingRules);
    // Passes over the ledger's list without copies of it: at 100,000 files each copy is a large object for the old generation.
    const files = ledger.oldestFirst();
    for (const file of files) {
      const maxAgeHours = ruleOf(file.stream)?.maxAgeHours ?? config.recordingMaxAgeHours;
      if (maxAgeHours > 0 && now - file.modified > maxAgeHours * HOUR_MS) await remove(file, 'age');
    }
    // A rule's maxBytes covers the files of the streams whose first matching rule it is.
    for (const rule of config.recordingRules) {
      if (rule.maxBytes)
        await trim(
          files,
          rule.maxBytes,
          (f) => ruleOf(f.stream) === rule,
          (f) => remove(f, 'rule_size'),
        );
    }
    if (config.recordingMaxBytes > 0)
      await trim(
        files,
        config.recordingMaxBytes,
        () => true,
        (f) => remove(f, 'volume_size'),
      );
    return deleted;
  }

  /** Stops the timer and waits for the sweep running, and the one it may have asked for. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    while (this.running) await this.running;
  }

  /** Deletes `file` unless it is being written; whether it no longer takes space (deleted now, or gone already). */
  private async remove(
    ledger: RecordingLedger,
    file: LedgerFile,
    reason: DeleteReason,
    writing: ReadonlyMap<string, number>,
    deleted: Deleted[],
  ): Promise<boolean> {
    const path = ledger.pathOf(file);
    if (writing.has(path)) return false;
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.deleteFailed = true; // not ours to remove, or replaced by hand: the next walk shows what is there
        return false;
      }
      ledger.forget(path);
      return true;
    }
    ledger.forget(path);
    const gone = ledger.describe(file);
    deleted.push({ file: gone, reason });
    this.stats.deletedFiles++;
    this.stats.deletedBytes += file.size;
    this.options.logger.info({ recording: gone.id, bytes: file.size, reason }, 'recording deleted by retention');
    return true;
  }

  /** Whether this sweep walks the storage directory (a clock set back walks at once). */
  private walkDue(now: number): boolean {
    if (this.walkedAt === undefined || now < this.walkedAt) return true;
    return now - this.walkedAt >= (this.deleteFailed ? SWEEP_MS : WALK_MS);
  }
}

/** Whether any age or size limit is set, for all streams or by a rule. */
function limitsSet(config: RetentionConfig): boolean {
  const { recordingMaxAgeHours, recordingMaxBytes, recordingRules } = config;
  return (
    recordingMaxAgeHours > 0 ||
    recordingMaxBytes > 0 ||
    recordingRules.some((rule) => (rule.maxAgeHours ?? 0) > 0 || (rule.maxBytes ?? 0) > 0)
  );
}

/** Deletes the oldest of `files` that `counts` until their total is within `maxBytes`. */
async function trim(
  files: readonly LedgerFile[],
  maxBytes: number,
  counts: (file: LedgerFile) => boolean,
  remove: (file: LedgerFile) => Promise<boolean>,
): Promise<void> {
  let total = 0;
  for (const file of files) if (!file.gone && counts(file)) total += file.size;
  for (const file of files) {
    if (total <= maxBytes) return;
    if (!file.gone && counts(file) && (await remove(file))) total -= file.size;
  }
}

/** The first matching rule of each stream, looked up once a sweep (rules change live). */
function rulesByStream(rules: readonly RecordingRule[]): (stream: LedgerStream) => RecordingRule | undefined {
  const found = new Map<LedgerStream, RecordingRule | undefined>();
  return (stream) => {
    if (!found.has(stream)) found.set(stream, ruleFor(rules, stream.app, stream.key));
    return found.get(stream);
  };
}
