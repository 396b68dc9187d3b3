/**
 * Anything a peer sent that we refuse to parse or act on. The reason is a
 * short, fixed token (no peer data in it) so it can label a metric; the
 * message may carry detail for the log. The session closes the connection on
 * it; it never escapes as a crash.
 */
export class RtmpProtocolError extends Error {
  readonly reason: string;
  constructor(reason: string, message?: string) {
    super(message ?? reason);
    this.name = 'RtmpProtocolError';
    this.reason = reason;
  }
}
