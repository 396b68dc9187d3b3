// Changes to rtmpd's config file while it runs (the operator mounts the file
// from a ConfigMap, which the kubelet replaces in place). The file is re-read
// with the same flags and environment as at start, so they still win over it.
// Options marked `live` in config.ts are written into the running Config,
// which the servers read where they use it; a change of any other option is
// only logged: it takes effect with the next process. A file that does not
// load keeps the running configuration. The file's text is polled, which also
// sees a ConfigMap's symlink swap, where an inotify watch on the path would not.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { configKeys, loadConfig, loggableValue, reloadOf, type Config, type ConfigKey } from './config.ts';
import type { Logger } from './telemetry/logger.ts';

export interface ConfigReloadOptions {
  /** The config file rtmpd started with. */
  file: string;
  /** The flags and environment rtmpd started with. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The running configuration, updated in place. */
  config: Config;
  logger: Logger;
  /** Called after live options changed, with their keys (e.g. to restart a timer that depends on one). */
  onApplied?: (keys: ConfigKey[]) => void;
  pollIntervalMs?: number;
}

export interface ConfigReload {
  /** Re-reads the file now and says what changed. */
  reload(): { applied: ConfigKey[]; needRestart: ConfigKey[] };
  close(): void;
}

export function watchConfigFile(o: ConfigReloadOptions): ConfigReload {
  const log = o.logger.child({ component: 'config' });
  const reload = () => {
    let next: Config;
    try {
      next = loadConfig(o.argv, o.env).config;
    } catch (err) {
      log.error({ file: o.file, err: (err as Error).message }, 'config file not applied; the running configuration stays');
      return { applied: [], needRestart: [] };
    }
    const changed = configKeys.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(o.config[k]));
    const applied = changed.filter((k) => reloadOf(k) === 'live');
    const needRestart = changed.filter((k) => reloadOf(k) === 'restart');
    for (const key of applied) (o.config as Record<ConfigKey, unknown>)[key] = next[key];
    if (applied.includes('logLevel')) o.logger.level = o.config.logLevel;
    if (applied.length) {
      log.info({ file: o.file, applied: Object.fromEntries(applied.map((k) => [k, loggableValue(k, o.config[k])])) }, 'config reloaded');
      o.onApplied?.(applied);
    }
    if (needRestart.length) log.warn({ file: o.file, options: needRestart }, 'config change takes effect after a restart');
    return { applied, needRestart };
  };
  // The text, not the stat: an edit of the same size keeps inode, size and mtime when
  // the mtime is kept (rsync -t, cp -p) or falls in the same tick of coarse file timestamps.
  const current = () => readFile(o.file, 'utf8').catch(() => undefined);
  // The baseline is taken now, and the file read once more, so a change made
  // between rtmpd's start and this watch is not missed.
  let seen = readTextSync(o.file);
  reload();
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    void current()
      .then((now) => {
        if (now === seen) return;
        seen = now;
        reload();
      })
      .finally(() => (polling = false));
  }, o.pollIntervalMs ?? 2000).unref();
  return { reload, close: () => clearInterval(timer) };
}

/** The file's text, or undefined while it is missing or unreadable (the poll compares the two alike). */
function readTextSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
