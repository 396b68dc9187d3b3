/**
 * The one error type every media parser in `codec/` and `flv/` throws on
 * malformed, truncated or unsupported input. Callers can catch this class and
 * treat anything else as a bug.
 */
export class MediaParseError extends Error {
  override name = 'MediaParseError';
}
