// Play from any pod: a player here of a stream another pod owns makes this
// pod pull the stream once from the owner (HTTP-FLV from the owner's pod IP,
// found through the claim), demux it and publish it into the local hub,
// where any number of local players share it. The owner sends its cached GOP
// first, so the picture appears at once. A relay ends when the owner ends
// the response (the stream was unpublished), when the claim changes hands or
// goes away, when no data comes for a while, or when nobody has watched it
// for a few seconds; its local players are then ended cleanly.
import type { ClientRequest, IncomingMessage } from 'node:http';
import { splitHostPort } from '../config.ts';
import { request } from '../http/required-modules.ts';
import { FlvDemuxer, FlvTagTooLargeError, type FlvTagRecord } from '../flv/demux.ts';
import { pushFlvTags } from '../flv/publish.ts';
import type { RemoteStreams, StreamHub } from '../hub/hub.ts';
import { streamId as idOf } from '../hub/names.ts';
import type { Stream } from '../hub/stream.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { FleetDirectory } from './directory.ts';
import type { ClaimRecord } from './records.ts';
import { RELAY_PATH } from './wire.ts';

export interface RelaysOptions {
  hub: StreamHub;
  directory: FleetDirectory;
  identity: string;
  token: string;
  log: Logger;
  /** --max-message-bytes: a relayed tag is held to what a publisher's message is. */
  maxTagBytes: number;
  /** A relay nobody has watched for this long is ended. */
  lingerMs?: number;
  /** A relay that received nothing for this long is ended (an owner that vanished without closing). */
  stallMs?: number;
}

const SWEEP_MS = 1000;

/** Why a relay failed, for rtmpd_fleet_relay_failures_total: a tag over --max-message-bytes, other bad FLV, media the hub threw on. */
export type RelayFailure = 'tag_too_large' | 'bad_flv' | 'media';

export class Relays implements RemoteStreams {
  /**
   * A subscriber waits this long for the owner's answer, at which the relay
   * publishes the stream here (the owner's GOP follows as it arrives; the hub
   * waits the longer of this and --play-wait-seconds). A fixed figure, not an
   * option: it bounds one request between two pods of one cluster, a few ms
   * apart across zones (well under a second even across regions), so 5 s
   * leaves room for two lost SYNs (resent after 1 and 3 s) and a busy owner;
   * longer would only delay the StreamNotFound of an owner that hangs
   * (one that refuses the connection or answers 404 ends the wait at once).
   */
  readonly arrivalMs = 5000;
  private readonly o: Required<RelaysOptions>;
  private readonly relays = new Map<string, Relay>();
  private readonly timer: NodeJS.Timeout;
  /** Relays started, for /metrics. */
  started = 0;
  /** Relays failed, by reason, for /metrics. */
  readonly failures: Record<RelayFailure, number> = { tag_too_large: 0, bad_flv: 0, media: 0 };

  constructor(o: RelaysOptions) {
    this.o = { lingerMs: 5000, stallMs: 15_000, ...o };
    o.directory.on('claim', this.onClaim);
    this.timer = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  get active(): number {
    return this.relays.size;
  }

  pull(app: string, key: string): AbortSignal | undefined {
    const id = idOf(app, key);
    const running = this.relays.get(id);
    if (running) return running.failed;
    const owner = this.o.directory.owner(id);
    if (!owner || owner.claim.identity === this.o.identity || !owner.pod.httpAddress) return undefined;
    const relay = new Relay({
      ...this.o,
      app,
      key,
      owner: owner.claim,
      address: owner.pod.httpAddress,
      onEnd: () => this.forget(id, relay),
      onFailure: (reason) => this.failures[reason]++,
    });
    this.relays.set(id, relay);
    this.started++;
    const { directory, log } = this.o;
    if (!directory.livePod(owner.claim.identity)) {
      const silentMs = Math.round(directory.silentFor(owner.claim.identity));
      log.info(
        { stream: id, owner: owner.pod.httpAddress, silentMs },
        'fleet: relaying from an owner whose Lease was not seen renewed (the API server may be behind)',
      );
    }
    relay.start();
    return relay.failed;
  }

  /** Ends the relay of a stream, if any (its claim moved here). */
  end(streamId: string): void {
    this.relays.get(streamId)?.stop('the stream is now published on this pod');
  }

  close(): void {
    clearInterval(this.timer);
    this.o.directory.off('claim', this.onClaim);
    for (const relay of [...this.relays.values()]) relay.stop('shutting down');
  }

  private forget(id: string, relay: Relay): void {
    if (this.relays.get(id) === relay) this.relays.delete(id);
  }

  private sweep(): void {
    const now = performance.now();
    for (const relay of [...this.relays.values()]) relay.sweep(now, this.o.lingerMs, this.o.stallMs);
  }

  private readonly onClaim = (streamId: string, claim: ClaimRecord | undefined): void => {
    const relay = this.relays.get(streamId);
    if (relay && claim?.identity !== relay.owner.identity) relay.stop('the stream left its owner');
    // A player waiting (--play-wait-seconds) for a stream that has just been published elsewhere.
    if (claim && claim.identity !== this.o.identity && this.o.hub.awaited(streamId)) {
      const [, app = '', key = ''] = streamId.split('/');
      this.pull(app, key);
    }
  };
}

interface RelayOptions extends Required<RelaysOptions> {
  app: string;
  key: string;
  owner: ClaimRecord;
  address: string;
  onEnd: () => void;
  onFailure: (reason: RelayFailure) => void;
}

class Relay {
  readonly owner: ClaimRecord;
  private readonly failure = new AbortController();
  /** Aborts when the relay ends before it published the stream here: its waiting subscribers need not wait on. */
  readonly failed = this.failure.signal;
  private readonly o: RelayOptions;
  private req: ClientRequest | undefined;
  private stream: Stream | undefined;
  private readonly demuxer: FlvDemuxer;
  private lastDataAt = performance.now();
  private unwatchedSince = performance.now();
  private ended = false;

  constructor(o: RelayOptions) {
    this.o = o;
    this.owner = o.owner;
    this.demuxer = new FlvDemuxer({ maxTagBytes: o.maxTagBytes });
  }

  start(): void {
    const { address, app, key, token } = this.o;
    this.req = request({
      ...splitHostPort(address),
      path: `${RELAY_PATH}/${encodeURIComponent(app)}/${encodeURIComponent(key)}.flv`,
      headers: { authorization: `Bearer ${token}` },
    });
    this.req.on('response', (res) => this.onResponse(res));
    this.req.on('error', (err) => this.stop(`owner unreachable: ${err.message}`));
    this.req.end();
  }

  sweep(now: number, lingerMs: number, stallMs: number): void {
    if (now - this.lastDataAt > stallMs) return this.stop(`no data from the owner for ${stallMs / 1000} s`);
    if (!this.stream) return;
    if (this.stream.subscriberCount > 0) this.unwatchedSince = now;
    else if (now - this.unwatchedSince > lingerMs) this.stop('nobody watches');
  }

  /** Ends the relay and, with it, the local stream: its players are told it was unpublished. */
  stop(why: string, failure?: RelayFailure): void {
    if (this.ended) return;
    this.ended = true;
    const fields = { stream: idOf(this.o.app, this.o.key), owner: this.o.address, why };
    if (failure) {
      this.o.onFailure(failure);
      this.o.log.warn({ ...fields, reason: failure }, 'fleet: relay ended');
    } else this.o.log.info(fields, 'fleet: relay ended');
    this.req?.destroy();
    if (this.stream) this.o.hub.unpublish(this.stream);
    else this.failure.abort();
    this.o.onEnd();
  }

  private onResponse(res: IncomingMessage): void {
    if (this.ended) return void res.destroy();
    if (res.statusCode !== 200) {
      res.resume();
      return this.stop(`the owner answered ${res.statusCode}`);
    }
    const { hub, app, key, address } = this.o;
    try {
      this.stream = hub.publish(app, key, { protocol: 'relay', remoteAddress: address, close: () => this.stop('closed here') });
    } catch (err) {
      res.destroy();
      return this.stop(`the local hub refused it: ${(err as Error).message}`);
    }
    this.o.log.info({ stream: this.stream.id, owner: address }, 'fleet: relaying');
    res.on('data', (chunk: Buffer) => this.onData(chunk));
    res.on('end', () => this.stop('the owner ended the stream'));
    res.on('close', () => this.stop('the owner closed the connection'));
    res.on('error', (err) => this.stop(`relay failed: ${err.message}`));
  }

  private onData(chunk: Buffer): void {
    if (this.ended || !this.stream) return;
    const now = performance.now();
    this.lastDataAt = now;
    let tags: FlvTagRecord[];
    try {
      tags = this.demuxer.push(chunk);
    } catch (err) {
      if (err instanceof FlvTagTooLargeError)
        return this.stop(`the owner sent an FLV tag of ${err.size} bytes, over --max-message-bytes ${err.limit}`, 'tag_too_large');
      return this.stop(`bad FLV from the owner: ${(err as Error).message}`, 'bad_flv');
    }
    try {
      pushFlvTags(this.stream, tags, now);
    } catch (err) {
      // Bad AMF from the owner, or a bug of ours that Stream throws on: it ends this relay, as it
      // closes a publisher's connection, and does not reach the process as an uncaught exception.
      this.o.log.error({ stream: this.stream.id, owner: this.o.address, err }, 'fleet: relay failed on the media');
      this.stop(`failed on the media: ${(err as Error).message}`, 'media');
    }
  }
}
