// Files rtmpd reads again while it runs: stream keys, HMAC secrets, JWT keys,
// API tokens, webhook signing keys, the TLS certificate. A mounted Kubernetes
// Secret changes by a `..data` symlink swap that an inotify watch on a path
// can miss, so the files are polled: every interval they are read again and,
// when their text differs, parsed and taken into use. A read or a parse that
// fails keeps the last good value; it is logged and counted once per distinct
// failure, not at every poll.
import type { Logger } from '../telemetry/logger.ts';

export interface WatchedOptions<R, T> {
  /** What is watched, as the log names it: "auth: secrets", "tls: certificate". */
  label: string;
  /** Reads the files; throws when they cannot be read. */
  read: () => Promise<R>;
  /** The text of what was read: a poll that reads the same text changes nothing. */
  textOf: (read: R) => string;
  /** Turns what was read into what the owner uses; throws for content it cannot use. */
  parse: (read: R) => T;
  /** What the reload log lines carry besides the message: the path, a certificate's fingerprint. */
  logFields: (value: T) => Record<string, unknown>;
  logger: Logger;
  intervalMs: number;
  /** Runs after a change was read, parsed and taken into use. */
  onChange?: (value: T) => void;
}

export class Watched<R, T> {
  /** Changes read while running, by result: ok (in use now) or error (the last good value stays). */
  readonly reloads = { ok: 0, error: 0 };
  private current: T;
  private readonly options: WatchedOptions<R, T>;
  private readonly timer: NodeJS.Timeout;
  /** The text of the value in use. */
  private inUse: string;
  /** The text last read, good or bad, or the last read error: the same failure is reported once. */
  private lastSeen: string;
  private polling = false;

  private constructor(options: WatchedOptions<R, T>, value: T, text: string) {
    this.options = options;
    this.current = value;
    this.inUse = this.lastSeen = text;
    this.timer = setInterval(() => void this.poll(), options.intervalMs);
    this.timer.unref();
  }

  /** Reads and parses the files once (an unreadable or unusable one is an error at start) and keeps polling them. */
  static async open<R, T>(options: WatchedOptions<R, T>): Promise<Watched<R, T>> {
    const read = await options.read();
    return new Watched(options, options.parse(read), options.textOf(read));
  }

  get value(): T {
    return this.current;
  }

  /** Reads the files now; resolves once a change has been taken or refused. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.reload();
    } finally {
      this.polling = false;
    }
  }

  private async reload(): Promise<void> {
    let read: R;
    try {
      read = await this.options.read();
    } catch (err) {
      this.refuse(`unreadable\0${(err as Error).message}`, err as Error);
      return;
    }
    const text = this.options.textOf(read);
    if (text === this.lastSeen) return;
    let value: T;
    try {
      value = this.options.parse(read);
    } catch (err) {
      this.refuse(text, err as Error);
      return;
    }
    this.lastSeen = text;
    // Back to the value in use after a bad spell: nothing to change.
    if (text === this.inUse) return;
    this.current = value;
    this.inUse = text;
    this.reloads.ok++;
    this.options.logger.info(this.options.logFields(value), `${this.options.label} reloaded`);
    this.options.onChange?.(value);
  }

  private refuse(seen: string, err: Error): void {
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    this.reloads.error++;
    this.options.logger.error(
      { ...this.options.logFields(this.current), err: err.message },
      `${this.options.label} not reloaded; the last good version stays`,
    );
  }

  close(): void {
    clearInterval(this.timer);
  }
}
