// Retention of recordings, in the background: by age (--recording-max-age-hours
// or a rule's maxAgeHours), by the total size of the streams a rule matches
// (its maxBytes, e.g. per app) and by the total under --storage-dir
// (--recording-max-bytes). Oldest first, and never a file being written.
import { unlink } from 'node:fs/promises';
import type { Config } from '../config.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import type { Logger } from '../telemetry/logger.ts';
import { listRecordings, type RecordingFile } from './catalog.ts';

export type RetentionConfig = Pick<Config, 'recordingMaxAgeHours' | 'recordingMaxBytes' | 'recordingRules'>;

export interface RetentionOptions {
  storageDir: string;
  /** Read at every sweep (these options change live). */
  config: RetentionConfig;
  /** Files being written now. */
  inUse: () => ReadonlySet<string>;
  logger: Logger;
}

export interface RetentionStats {
  deletedFiles: number;
  deletedBytes: number;
}

export type DeleteReason = 'age' | 'rule_size' | 'volume_size';

const HOUR_MS = 3_600_000;
/** A sweep runs this often, and after every recording file that closes. */
const SWEEP_MS = 60_000;

export class Retention {
  readonly stats: RetentionStats = { deletedFiles: 0, deletedBytes: 0 };
  private readonly options: RetentionOptions;
  private readonly timer: NodeJS.Timeout;
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

  /** One pass over the storage directory; returns the files deleted, with why. */
  async sweep(now = Date.now()): Promise<{ file: RecordingFile; reason: DeleteReason }[]> {
    const { config, storageDir } = this.options;
    const inUse = this.options.inUse();
    const files = await listRecordings(storageDir); // oldest first
    const deleted: { file: RecordingFile; reason: DeleteReason }[] = [];
    const remove = async (file: RecordingFile, reason: DeleteReason): Promise<boolean> => {
      if (inUse.has(file.path)) return false;
      try {
        await unlink(file.path);
      } catch {
        return false; // gone already (a DELETE through the API), or not ours to remove
      }
      deleted.push({ file, reason });
      this.stats.deletedFiles++;
      this.stats.deletedBytes += file.size;
      this.options.logger.info({ recording: file.id, bytes: file.size, reason }, 'recording deleted by retention');
      return true;
    };

    let kept: RecordingFile[] = [];
    for (const file of files) {
      const maxAgeHours = ruleFor(config.recordingRules, file.app, file.key)?.maxAgeHours ?? config.recordingMaxAgeHours;
      const expired = maxAgeHours > 0 && now - file.modified.getTime() > maxAgeHours * HOUR_MS;
      if (!expired || !(await remove(file, 'age'))) kept.push(file);
    }
    // A rule's maxBytes covers the files of the streams whose first matching rule it is.
    for (const rule of config.recordingRules) {
      if (!rule.maxBytes) continue;
      const mine = kept.filter((f) => ruleFor(config.recordingRules, f.app, f.key) === rule);
      kept = await this.trim(mine, rule.maxBytes, kept, (f) => remove(f, 'rule_size'));
    }
    if (config.recordingMaxBytes > 0) await this.trim(kept, config.recordingMaxBytes, kept, (f) => remove(f, 'volume_size'));
    return deleted;
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** Deletes the oldest of `files` until their total is within `maxBytes`; returns `all` without what was deleted. */
  private async trim(
    files: RecordingFile[],
    maxBytes: number,
    all: RecordingFile[],
    remove: (file: RecordingFile) => Promise<boolean>,
  ): Promise<RecordingFile[]> {
    let total = files.reduce((sum, f) => sum + f.size, 0);
    const gone = new Set<RecordingFile>();
    for (const file of files) {
      if (total <= maxBytes) break;
      if (await remove(file)) {
        total -= file.size;
        gone.add(file);
      }
    }
    return all.filter((f) => !gone.has(f));
  }
}
