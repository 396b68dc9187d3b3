// Every connection holds a file descriptor (a recording download two: its
// socket and the file), so the connection caps are only true when the
// process may open that many. A cap past the open-file limit shows as EMFILE
// at accept and failed recordings under load, not at start: warn at start.
import { readFileSync } from 'node:fs';
import type { Config } from '../config.ts';
import type { Logger } from '../telemetry/logger.ts';

/**
 * Descriptors beyond the connection caps: recordings being written, recording
 * downloads' files, snapshot and transcode pipes, forwards, fleet relays and
 * webhooks' connections, the log, Node's own.
 */
export const DESCRIPTOR_MARGIN = 1000;

/** The soft "Max open files" of a /proc/<pid>/limits text; undefined when unlimited or absent. */
export function softOpenFileLimit(limits: string): number | undefined {
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
}

/** Descriptors the connection caps may take at once, with the margin. */
export function descriptorsNeeded(config: Pick<Config, 'maxConnections' | 'httpMaxConnections'>): number {
  return config.maxConnections + config.httpMaxConnections + DESCRIPTOR_MARGIN;
}

/**
 * Logs a warning when --max-connections and --http-max-connections, with the
 * margin, exceed the soft RLIMIT_NOFILE. Linux only (/proc/self/limits);
 * elsewhere it does nothing. Checked at start: --max-connections changed by a
 * reload is not checked again.
 */
export function warnIfDescriptorsShort(
  config: Pick<Config, 'maxConnections' | 'httpMaxConnections'>,
  logger: Logger,
  readLimits: () => string | undefined = readOwnLimits,
): void {
  const limits = readLimits();
  if (limits === undefined) return;
  const limit = softOpenFileLimit(limits);
  const needed = descriptorsNeeded(config);
  if (limit === undefined || needed <= limit) return;
  logger.warn(
    {
      maxConnections: config.maxConnections,
      httpMaxConnections: config.httpMaxConnections,
      margin: DESCRIPTOR_MARGIN,
      needed,
      openFileLimit: limit,
    },
    `--max-connections (${config.maxConnections}) plus --http-max-connections (${config.httpMaxConnections}) plus ${DESCRIPTOR_MARGIN} for files, recordings and pipes exceed the open-file limit (${limit}, the soft RLIMIT_NOFILE; a recording download holds two): past it connections fail at accept and recordings fail to open; raise the limit (ulimit -n, LimitNOFILE=) or lower the caps`,
  );
}

function readOwnLimits(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined; // no /proc mounted
  }
}
