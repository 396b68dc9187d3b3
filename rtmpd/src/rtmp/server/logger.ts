/**
 * The logging surface rtmp needs: pino's `(obj, msg)` signature, so the
 * process's pino logger (or a child of it) is passed straight in.
 */
export interface RtmpLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const ignore = (): void => {};
export const silentLogger: RtmpLogger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
