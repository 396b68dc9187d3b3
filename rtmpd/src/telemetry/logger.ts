import { pino, type Logger } from 'pino';
import type { Config } from '../config.ts';
import { sourceMappedStack } from './source-mapped-stack.ts';
import { traceLogMixin } from './tracing.ts';

export type { Logger };

/**
 * pino's error serializer with `type` the error's `name` rather than its
 * constructor's: the bundle is minified, so a class's own name is a letter or
 * two (`Vt`), while `name` is what each of rtmpd's error classes sets (as
 * Node's and the bundled packages' errors do) and a log search can match.
 * Its `stack` names the source files and lines (source-mapped-stack.ts).
 * The errors pino serializes inside one (an AggregateError's `aggregateErrors`,
 * a property that holds an error) are named and mapped the same way.
 */
export function serializeError(err: unknown): unknown {
  return namedByName(pino.stdSerializers.err(err as Error));
}

function namedByName(serialized: unknown): unknown {
  if (Array.isArray(serialized)) return serialized.map(namedByName);
  // pino's serialized errors keep the error they were made from in `raw` (not enumerable, so never logged).
  const raw = (serialized as { raw?: unknown } | null)?.raw;
  if (!(raw instanceof Error)) return serialized;
  const fields = Object.entries(serialized as object).map(([key, value]) => [key, namedByName(value)]);
  const stack = (serialized as { stack?: unknown }).stack;
  return { ...Object.fromEntries(fields), type: raw.name, ...(typeof stack === 'string' ? { stack: sourceMappedStack(stack) } : {}) };
}

/**
 * The process logger: JSON lines for collectors, or pino-pretty for a
 * terminal. pino-pretty runs as an in-process stream rather than a transport
 * worker so log lines written just before exit are not lost. It is a
 * devDependency; an image installed without it falls back to JSON and says so.
 */
export async function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Promise<Logger> {
  // With tracing on, lines logged inside a span (an API request, a snapshot) carry trace_id/span_id.
  const options = { level: config.logLevel, base: { service: 'rtmpd' }, mixin: traceLogMixin, serializers: { err: serializeError } };
  // JSON lines are written to stdout as they are logged, so none is left to
  // flush at exit: pino's asynchronous default flushes at exit in a loop that
  // retries a broken pipe (its reader gone) forever, and rtmpd never exited.
  const json = () => pino(options, pino.destination({ dest: 1, sync: true }));
  if (config.logFormat !== 'pretty') return json();
  try {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }));
  } catch {
    const logger = json();
    logger.warn('pino-pretty is not installed; logging JSON');
    return logger;
  }
}
