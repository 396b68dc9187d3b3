// One destination of one stream: an RTMP(S) connection that publishes the
// stream there, in one explicit state at a time:
//   connecting → handshaking → connect → createStream → publish → sending
// and, after any failure while the stream is live, backoff (capped
// exponential, jittered) and connecting again. Every state before sending has
// a deadline. In `sending` the forwarder is a hub subscriber that a slow
// destination cannot make anyone wait for: its queue is bounded like a
// player's (skip to the next keyframe past --player-max-buffer-bytes or
// --player-max-queue-seconds), and a
// destination that stops reading is closed as a stalled player is, then
// retried. What the destination sends back is parsed under small bounds.
import type { Socket } from 'node:net';
import { connect as tcpConnect } from 'node:net';
import type { MediaPacket } from '../hub/packet.ts';
import type { Stream } from '../hub/stream.ts';
import type { CloseReason, Subscriber } from '../hub/subscriber.ts';
import type { Destination } from '../rtmp/client/destination.ts';
import { PublishRefused, RtmpPublishClient, type PublishStep } from '../rtmp/client/publish-client.ts';
import { RtmpConnection } from '../rtmp/io/connection.ts';
import type { SocketIo } from '../rtmp/io/socket-io.ts';
import { ClientHandshake } from '../rtmp/wire/handshake.ts';
import type { Logger } from '../telemetry/logger.ts';
import { describeCertificateError } from './certificate-errors.ts';
import type { ForwardFailure, ForwardState, ForwardView } from './forward-view.ts';

/**
 * A destination sends commands and control messages only: what it may make
 * rtmpd hold of a message still arriving is kept far below a publisher's.
 */
const INBOUND_LIMITS = { maxMessageBytes: 64 * 1024, maxPartialBytes: 128 * 1024, maxChunkStreams: 16 };
/** The first retry's delay; each failure in a row doubles it up to the configured cap. */
const FIRST_RETRY_MS = 1000;
/** A publish that lasted this long was a success: the next failure is retried after the first delay again. */
const HEALTHY_SENDING_MS = 30_000;

interface ForwarderTiming {
  /** Deadline of each step before sending: the TCP (and TLS) connect, the handshake, each command's reply. */
  stepTimeoutMs: number;
  /** The longest wait between attempts. */
  maxBackoffMs: number;
}

export interface ForwarderOptions {
  stream: Stream;
  destination: Destination;
  io: SocketIo;
  timing: ForwarderTiming;
  /** Opens the TLS connection of an rtmps:// destination (loaded only when one is configured). */
  connectTls?: (destination: Destination) => Socket;
  log: Logger;
  /** Counts attempts and failures across forwards (metrics). */
  onAttempt: () => void;
  onFailure: (reason: ForwardFailure) => void;
}

export class Forwarder implements Subscriber {
  readonly kind = 'forward';
  readonly delivery = 'skip-to-keyframe';
  state: ForwardState = 'backoff';
  attempts = 0;
  lastError: string | undefined;
  private bytesBefore = 0;
  private failuresInRow = 0;
  private sendingSince = 0;
  private connection: RtmpConnection | undefined;
  private client: RtmpPublishClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly o: ForwarderOptions;

  constructor(o: ForwarderOptions) {
    this.o = o;
  }

  get bytes(): number {
    return this.bytesBefore + (this.connection?.bytesSent ?? 0);
  }

  view(): ForwardView {
    const { destination, state, attempts, bytes } = this;
    return { destination: destination.description, state, attempts, bytes, last_error: this.lastError ?? null };
  }

  private get destination(): Destination {
    return this.o.destination;
  }

  start(): void {
    if (this.state !== 'backoff') return;
    this.attempts++;
    this.o.onAttempt();
    this.enter('connecting');
    const { host, port } = this.destination;
    const socket = this.destination.secure ? this.o.connectTls!(this.destination) : tcpConnect({ host, port });
    socket.setNoDelay(true);
    // The digest handshake, as FFmpeg's client sends it; servers that answer the simple one are taken too.
    const handshake = new ClientHandshake('digest', (bytes) => connection.send(bytes));
    const connection = new RtmpConnection(socket, {
      io: this.o.io,
      handshake,
      events: {
        handshakeDone: () => this.client!.handshakeDone(),
        message: (typeId, _streamId, _timestamp, body) => this.client!.message(typeId, body),
      },
    });
    connection.setInboundLimits(INBOUND_LIMITS);
    this.connection = connection;
    this.client = new RtmpPublishClient(this.destination, connection, (step) => this.onStep(step));
    socket.once(this.destination.secure ? 'secureConnect' : 'connect', () => {
      if (this.connection !== connection) return;
      this.enter('handshaking');
      handshake.start();
    });
    socket.on('data', (bytes: Buffer) => {
      if (this.connection !== connection) return;
      try {
        this.o.io.handleRead(connection, bytes);
      } catch (err) {
        if (err instanceof PublishRefused) this.fail('refused', `refused: ${err.message}`);
        else this.fail('protocol', (err as Error).message);
      }
    });
    socket.on('error', (err) => {
      if (this.connection !== connection) return;
      const certificateProblem = describeCertificateError(err);
      if (certificateProblem === undefined) this.fail('connection', err.message);
      else this.fail('certificate', certificateProblem);
    });
    socket.on('close', () => this.connection === connection && this.fail('closed', 'the destination closed the connection'));
  }

  /** The stream ended or the server stops: a publish in progress is ended as encoders end it. */
  stop(): void {
    if (this.state === 'stopped') return;
    clearTimeout(this.timer);
    this.o.stream.unsubscribe(this);
    this.client?.unpublish();
    const connection = this.connection;
    connection?.end();
    // A destination that never closes its side is not waited for.
    if (connection) setTimeout(() => connection.destroy(), this.o.timing.stepTimeoutMs).unref();
    this.release();
    this.enter('stopped');
    this.o.log.info({ destination: this.destination.description, bytes: this.bytes }, 'forward: stopped');
  }

  // Subscriber: the hub writes the stream's packets here while the destination takes them.
  begin(): void {}

  pendingBytes(): number {
    return this.connection?.pendingBytes ?? 0;
  }

  write(packet: MediaPacket): void {
    this.client?.sendMedia(packet.kind, packet.timestamp, packet.body);
  }

  close(reason: CloseReason): void {
    if (reason === 'stalled') this.fail('stalled', 'the destination read too slowly (stalled like a player)');
    else this.stop();
  }

  private onStep(step: PublishStep): void {
    if (step === 'unpublished') return;
    this.enter(step);
    if (step !== 'sending') return;
    this.sendingSince = performance.now();
    this.o.log.info({ destination: this.destination.description, attempt: this.attempts }, 'forward: publishing');
    // From here the stream's metadata, decoder config and cached GOP, then live media.
    this.o.stream.subscribe(this, performance.now());
  }

  private enter(state: ForwardState): void {
    this.state = state;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (state === 'sending' || state === 'stopped' || state === 'backoff') return;
    const { stepTimeoutMs } = this.o.timing;
    this.timer = setTimeout(() => this.fail('timeout', `no answer in ${state} within ${stepTimeoutMs / 1000} s`), stepTimeoutMs);
  }

  /** Drops the connection and retries after a delay that doubles with each failure in a row; `message` is the API's last_error. */
  private fail(reason: ForwardFailure, message: string): void {
    if (this.state === 'stopped' || this.state === 'backoff') return;
    const wasSending = this.state === 'sending';
    this.o.stream.unsubscribe(this);
    this.connection?.destroy();
    this.release();
    this.o.onFailure(reason);
    this.lastError = message;
    if (wasSending && performance.now() - this.sendingSince >= HEALTHY_SENDING_MS) this.failuresInRow = 0;
    this.failuresInRow++;
    const cap = this.o.timing.maxBackoffMs;
    const delay = Math.min(cap, FIRST_RETRY_MS * 2 ** Math.min(this.failuresInRow - 1, 20)) * (0.8 + Math.random() * 0.4);
    this.enter('backoff');
    this.o.log.warn(
      { destination: this.destination.description, err: this.lastError, retryInSeconds: Math.round(delay / 100) / 10 },
      'forward: failed; retrying',
    );
    this.timer = setTimeout(() => this.start(), delay);
  }

  /** Keeps the byte count of a connection that is going. */
  private release(): void {
    this.bytesBefore += this.connection?.bytesSent ?? 0;
    this.connection = undefined;
    this.client = undefined;
  }
}
