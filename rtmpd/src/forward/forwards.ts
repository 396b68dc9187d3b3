// Forwarding (restreaming): each stream published here that a forwardRules
// rule matches is published on to the rule's destinations (YouTube, Twitch,
// another origin), one Forwarder each, for as long as it is live. Rules are
// read at each publish, so a reloaded config applies to the streams
// published after it. A stream relayed from its owner pod (protocol `relay`)
// is never forwarded: the owner does that. The client and its I/O are loaded
// with the first forward, so a server without forwards does not hold them
// (idle memory, README "Where the memory goes").
import { MAX_FORWARDS_PER_STREAM, type ForwardRule } from '../config.ts';
import type { StreamHub, StreamEndReason } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { ruleFor } from '../hub/stream-rules.ts';
import { DestinationError, parseDestination, redactUrl, type Destination } from '../rtmp/client/destination.ts';
import { SocketIo } from '../rtmp/io/socket-io.ts';
import { fillPlaceholders } from './placeholders.ts';
import { lines, readBounded } from '../secrets/mounted.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FORWARD_FAILURES, FORWARD_STATES, type ForwardFailure, type ForwardState, type ForwardView } from './forward-view.ts';
import type { Forwarder } from './forwarder.ts';

interface ForwardsConfig {
  forwardRules: ForwardRule[];
  forwardTimeoutSeconds: number;
  forwardRetryMaxSeconds: number;
  forwardTlsCaFile: string;
}

export interface ForwardsOptions {
  hub: StreamHub;
  /** Read at each publish (forwardRules and the timings change live). */
  config: ForwardsConfig;
  logger: Logger;
}

/** Counted over all forwards since start, for /metrics. */
export interface ForwardStats {
  attempts: number;
  failures: Record<ForwardFailure, number>;
}

export class Forwards {
  readonly stats: ForwardStats = {
    attempts: 0,
    failures: Object.fromEntries(FORWARD_FAILURES.map((reason) => [reason, 0])) as Record<ForwardFailure, number>,
  };
  private readonly o: ForwardsOptions;
  private readonly byStream = new Map<Stream, Forwarder[]>();
  /** Made with the first forward: a server without forwards keeps no buffers for them. */
  private io: SocketIo | undefined;
  private connectTls: Promise<(destination: Destination) => import('node:net').Socket> | undefined;

  constructor(o: ForwardsOptions) {
    this.o = o;
    o.hub.on('publish', this.onPublish);
    o.hub.on('unpublish', this.onUnpublish);
  }

  /** The stream's forwards, for the API. */
  viewsOf(stream: Stream): ForwardView[] {
    return (this.byStream.get(stream) ?? []).map((forwarder) => forwarder.view());
  }

  /** Forwards now, by state. */
  countsByState(): Record<ForwardState, number> {
    const counts = Object.fromEntries(FORWARD_STATES.map((state) => [state, 0])) as Record<ForwardState, number>;
    for (const forwarders of this.byStream.values()) for (const forwarder of forwarders) counts[forwarder.state]++;
    return counts;
  }

  close(): void {
    this.o.hub.off('publish', this.onPublish);
    this.o.hub.off('unpublish', this.onUnpublish);
    for (const stream of [...this.byStream.keys()]) this.onUnpublish(stream);
  }

  private readonly onPublish = (stream: Stream): void => {
    if (stream.publisher.protocol === 'relay') return;
    const rule = ruleFor(this.o.config.forwardRules, stream.app, stream.key);
    if (rule && (rule.urls.length > 0 || rule.urlFiles.length > 0)) void this.start(stream, rule);
  };

  private readonly onUnpublish = (stream: Stream, _reason?: StreamEndReason): void => {
    const forwarders = this.byStream.get(stream);
    this.byStream.delete(stream);
    for (const forwarder of forwarders ?? []) forwarder.stop();
  };

  private async start(stream: Stream, rule: ForwardRule): Promise<void> {
    const log = this.o.logger.child({ stream: stream.id });
    const destinations = await this.destinationsOf(stream, rule, log);
    if (stream.isEnded || destinations.length === 0) return;
    const [{ Forwarder }, connectTls] = await Promise.all([
      import('./forwarder.ts'),
      destinations.some((d) => d.secure) ? this.tls().catch((err: Error) => err) : undefined,
    ]);
    if (connectTls instanceof Error) return void log.error({ err: connectTls.message }, 'forward: cannot set up TLS; not forwarding');
    if (stream.isEnded) return;
    const { config } = this.o;
    const io = (this.io ??= new SocketIo());
    const forwarders = destinations.map(
      (destination) =>
        new Forwarder({
          stream,
          destination,
          io,
          timing: { stepTimeoutMs: config.forwardTimeoutSeconds * 1000, maxBackoffMs: config.forwardRetryMaxSeconds * 1000 },
          ...(connectTls ? { connectTls } : {}),
          log,
          onAttempt: () => this.stats.attempts++,
          onFailure: (reason) => this.stats.failures[reason]++,
        }),
    );
    this.byStream.set(stream, forwarders);
    for (const forwarder of forwarders) forwarder.start();
  }

  /** The rule's URLs and those of its files (a mounted Secret, read at each publish), placeholders filled; bad ones logged, redacted. */
  private async destinationsOf(stream: Stream, rule: ForwardRule, log: Logger): Promise<Destination[]> {
    const urls = [...rule.urls];
    for (const file of rule.urlFiles) {
      try {
        urls.push(...lines(await readBounded(file)));
      } catch (err) {
        log.error({ file, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'forward: cannot read a URL file');
      }
    }
    if (urls.length > MAX_FORWARDS_PER_STREAM)
      log.error(
        { destinations: urls.length, max: MAX_FORWARDS_PER_STREAM },
        'forward: more destinations than a stream is forwarded to; the first are kept',
      );
    const destinations: Destination[] = [];
    for (const url of urls.slice(0, MAX_FORWARDS_PER_STREAM)) {
      try {
        destinations.push(parseDestination(fillPlaceholders(url, stream.app, stream.key)));
      } catch (err) {
        if (!(err instanceof DestinationError)) throw err;
        log.error({ destination: redactUrl(url), err: err.message }, 'forward: not a destination URL');
      }
    }
    return destinations;
  }

  private tls() {
    const caFile = this.o.config.forwardTlsCaFile;
    return (this.connectTls ??= Promise.all([import('./tls-connect.ts'), caFile ? readBounded(caFile) : undefined]).then(
      ([{ tlsConnector }, ca]) => tlsConnector(ca),
      (err: unknown) => {
        this.connectTls = undefined; // the next publish tries again
        throw err;
      },
    ));
  }
}
