// Holds the workers back while the API server serves an older RtmpServer CRD
// than this operator's (see api/served-schema.ts): reconciling against it
// would write objects the API server silently strips. The cause is logged,
// recorded as a Warning Event and shown by /readyz (so `helm upgrade --wait`
// fails with it), and looked at again until the CRD is current.
import type { Logger } from 'pino';
import { sleep } from '@flux-rtmpd/rtmpd/bounded-wait';

export interface CrdGateOptions {
  /** What is wrong with the served CRD; undefined when it is current. */
  check: () => Promise<string | undefined>;
  log: Logger;
  /** Called once per distinct problem. */
  onStale?: (why: string) => void;
  retryMs?: number;
}

export class CrdGate {
  readonly #o: CrdGateOptions;
  /** Aborted by stop(): cuts a retry's sleep short, also one that starts after stop() (a check was in flight). */
  readonly #stopping = new AbortController();
  #problem?: string;

  constructor(opts: CrdGateOptions) {
    this.#o = opts;
  }

  /** Why the workers are held back, while they are. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Resolves true once the served CRD is current, false when stopped first. */
  async wait(): Promise<boolean> {
    const { check, log, onStale, retryMs = 5_000 } = this.#o;
    while (!this.#stopping.signal.aborted) {
      let why: string | undefined;
      let failure: unknown;
      try {
        why = await check();
      } catch (err) {
        failure = err;
        why = `reading the served RtmpServer schema failed: ${String(err)}`;
      }
      if (why === undefined) {
        if (this.#problem) log.info('the served RtmpServer CRD is current now; starting');
        this.#problem = undefined;
        return true;
      }
      if (why !== this.#problem) {
        log.error({ retryInMs: retryMs, err: failure }, why);
        onStale?.(why);
      }
      this.#problem = why;
      await sleep(retryMs, this.#stopping.signal);
    }
    return false;
  }

  stop(): void {
    this.#stopping.abort();
  }
}
