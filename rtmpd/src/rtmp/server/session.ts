// One server-side RTMP connection: handshake, then the command state machine
// (connect → createStream → publish | play, each admitted first), media into
// the hub, replies as FMS/SRS send them. Anything a peer does wrong ends in
// a RtmpProtocolError and a closed connection, counted by reason, never a crash.
import type { Socket } from 'node:net';
import type { Config } from '../../config.ts';
import { PublishRefused, type StreamEndReason, type StreamHub } from '../../hub/hub.ts';
import { shownName } from '../../hub/names.ts';
import type { Stream } from '../../hub/stream.ts';
import type { CloseReason, RtmpProtocol } from '../../hub/subscriber.ts';
import type { Budget } from '../../memory/byte-budget.ts';
import { ConnectionTrace } from '../../telemetry/tracing.ts';
import { RtmpConnection, WINDOW_ACK_SIZE } from '../io/connection.ts';
import type { SocketIo } from '../io/socket-io.ts';
import { splitAggregate } from '../wire/aggregate.ts';
import type { AmfObject } from '../wire/amf-values.ts';
import { EcmaArray, encodeAmf0 } from '../wire/amf0.ts';
import {
  connectResult,
  errorResult,
  isObject,
  onFCPublish,
  onFCUnpublish,
  onStatus,
  parseCommand,
  parseData,
  result,
  type Command,
  type StatusInfo,
} from '../wire/commands.ts';
import { BandwidthLimit, setPeerBandwidth, streamBegin, windowAckSize } from '../wire/control.ts';
import { RtmpProtocolError } from '../wire/errors.ts';
import { ServerHandshake } from '../wire/handshake.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';
import type { InboundLimits } from '../wire/chunk-reader.ts';
import {
  admit,
  type AdmissionAction,
  type AdmissionCheck,
  type AdmissionDecision,
  type AdmissionLease,
  type AdmissionRequest,
} from './admission.ts';
import type { FaultLog } from '../../telemetry/fault-log.ts';
import type { RtmpLogger } from './logger.ts';
import { RtmpPlayer } from './player.ts';
import { countBy, type RtmpListenerStats } from './stats.ts';

export type SessionConfig = Pick<
  Config,
  | 'chunkSize'
  | 'playWaitSeconds'
  | 'idleTimeoutSeconds'
  | 'connectTimeoutSeconds'
  | 'startTimeoutSeconds'
  | 'maxPauseSeconds'
  | 'maxMessageBytes'
  | 'maxMessageBytesBeforePublish'
  | 'maxChunkStreams'
>;

export interface SessionOptions {
  hub: StreamHub;
  config: SessionConfig;
  io: SocketIo;
  /** Checks every publish and play goes through; see admission.ts. */
  admission: readonly AdmissionCheck[];
  logger: RtmpLogger;
  /** Limits the lines its faults log (protocol errors, timeouts, refusals), shared by the server's connections. */
  faults: FaultLog;
  /** The listener the connection came in on: its publisher's or player's protocol. */
  protocol: RtmpProtocol;
  /** The counters of that listener. */
  stats: RtmpListenerStats;
  /** Bytes of messages still arriving, over every connection of the server. */
  inboundBudgets: InboundBudgets;
  /** Takes a publish start from the client's address; false when it has used up --max-publishes-per-address-per-minute. */
  mayStartPublish: () => boolean;
  onClose: (session: RtmpSession) => void;
}

/** What a publisher may hold in unfinished messages: one of the largest, and 1 MiB of small ones interleaved with it. */
export const publisherPartialBytes = (config: Pick<SessionConfig, 'maxMessageBytes'>): number => config.maxMessageBytes + 1024 * 1024;

/**
 * The halves of --partial-messages-max-bytes: one for publishers' unfinished
 * messages, one for every other connection's. Neither kind can take the
 * other's room: publishers that announce large messages and never finish
 * them would otherwise leave no room for a client's connect or play.
 */
interface InboundBudgets {
  publishing: Budget;
  others: Budget;
}

/** Message streams one connection may create: a publisher or player needs one. */
const MAX_STREAMS = 8;
/**
 * Messages held while admission checks run, in multiples of the message size
 * allowed before publish: an encoder may send its metadata right behind
 * publish, and it must not be lost.
 */
const HELD_MESSAGES = 4;

interface HeldMessage {
  typeId: number;
  streamId: number;
  timestamp: number;
  body: Buffer;
}

/** A publish or play whose admission checks are running; messages that arrive meanwhile wait in `held`. */
interface Admitting {
  kind: 'admitting';
  action: AdmissionAction;
  streamId: number;
  key: string;
  abort: AbortController;
  held: HeldMessage[];
  heldBytes: number;
  /** performance.now() when the checks began. */
  since: number;
}

/** An admitted player waiting (up to playWaitSeconds) for its stream's publisher. */
interface Waiting {
  kind: 'waiting';
  player: RtmpPlayer;
  abort: AbortController;
}

/**
 * What the connection is doing; every state carries what only it needs.
 * The kinds are the `state` label of rtmpd_connections, plus `closed`.
 */
type SessionState =
  | { kind: 'handshake' }
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | Admitting
  | Waiting
  | { kind: 'publishing'; streamId: number; stream: Stream }
  | { kind: 'playing'; stream: Stream; player: RtmpPlayer }
  | { kind: 'closed' };

/**
 * `live?token=x` → `live`; `/live/` → `live`. Trimmed by index: a regex for
 * the trailing slashes takes time quadratic in a run of them inside the name
 * (a second for a 60 KB connect).
 */
function stripQuery(name: string): string {
  const q = name.indexOf('?');
  const path = q < 0 ? name : name.slice(0, q);
  let start = 0;
  let end = path.length;
  while (start < end && path[start] === '/') start++;
  while (end > start && path[end - 1] === '/') end--;
  return path.slice(start, end);
}

/** The query string of a stream name (`key?token=x` → `token=x`), or ''. */
function queryOf(name: string): string {
  const q = name.indexOf('?');
  return q < 0 ? '' : name.slice(q + 1);
}

/** The app from a tcUrl's path, for clients whose connect object lacks `app`. */
function appFromTcUrl(tcUrl: string): string | undefined {
  const match = /^[a-z]+:\/\/[^/]+\/([^?]*)/i.exec(tcUrl);
  return match?.[1] ? stripQuery(match[1]) : undefined;
}

/** What a publisher the server ends is told, by why. */
const PUBLISHER_ENDED: Partial<Record<CloseReason, StatusInfo>> = {
  shutdown: { level: 'status', code: 'NetStream.Unpublish.Success', description: 'server shutting down' },
  kicked: { level: 'error', code: 'NetStream.Publish.Rejected', description: 'the publisher was kicked through the API' },
  revoked: {
    level: 'error',
    code: 'NetStream.Publish.Unauthorized',
    description: 'the credential that admitted this publisher was revoked',
  },
};

/** A stream's end reason (webhooks), by why the server ended its publisher. */
const PUBLISHER_END_REASON: Record<CloseReason, StreamEndReason> = {
  shutdown: 'shutdown',
  kicked: 'kicked',
  revoked: 'revoked',
  claim_lost: 'claim_lost',
  stalled: 'timed_out',
  error: 'protocol_error',
  unpublished: 'publisher_closed',
};

const streamName = (cmd: Command): string => (typeof cmd.args[0] === 'string' ? cmd.args[0] : '');

/** Enhanced RTMP's capsEx bit by which a client's connect says it honours a reconnect request. */
const CAPS_EX_RECONNECT = 0x01;

export class RtmpSession {
  readonly socket: Socket;
  readonly remoteAddress: string;
  private readonly connection: RtmpConnection;
  private readonly options: SessionOptions;
  private state: SessionState;
  /** Set by connect. */
  private app = '';
  private tcUrl: string | undefined;
  /** Enhanced RTMP capabilities the client declared in connect. */
  private capsEx = 0;
  private createdStreams = 0;
  /** Held from admission until the publish or play ends (admission.ts). */
  private lease: AdmissionLease | undefined;
  /** Closed by us for a counted reason, not by the peer. */
  private failed = false;
  /** Why a stream published here ends if the connection closes: the peer hung up, unless we closed it. */
  private publishEnd: StreamEndReason = 'publisher_closed';
  /** The connection's trace span (a no-op object when tracing is off). */
  private readonly trace: ConnectionTrace;
  /** performance.now() at accept: the handshake and connect must be done within --connect-timeout-seconds. */
  private readonly acceptedAt = performance.now();
  /** When the connection last had nothing going on: it must publish or play within --start-timeout-seconds. */
  private startDeadlineFrom = 0;
  /** What the sweep watches for progress (bytes moved, media received) when it last changed, and when that was. */
  private progress = -1;
  private progressSince = 0;
  /** performance.now() at the socket read being handled: when its media arrived. */
  private readAt = 0;

  constructor(socket: Socket, options: SessionOptions) {
    this.socket = socket;
    this.options = options;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.trace = new ConnectionTrace(socket);
    this.connection = new RtmpConnection(socket, {
      io: options.io,
      handshake: new ServerHandshake((bytes) => this.connection.send(bytes)),
      events: {
        handshakeDone: () => this.handshakeDone(),
        message: (typeId, streamId, timestamp, body) => this.onMessage(typeId, streamId, timestamp, body),
      },
      // Reads land in a buffer shared by every connection (io/shared-read.ts),
      // so a borrowed body is valid until this read is handled; whatever keeps
      // a packet longer (GOP cache, headers, last keyframe, FLV tags, queued
      // socket writes, held messages) copies it.
      borrowBodies: true,
      counters: options.stats,
      inbound: this.inboundLimits('handshake'),
    });
    this.state = { kind: 'handshake' };
    options.stats.connections.handshake++;
    socket.setNoDelay(true);
    socket.on('error', (err) => options.logger.debug({ ...this.peer, err: err.message }, 'rtmp socket error'));
    socket.on('close', () => this.cleanup());
  }

  /**
   * What names the connection in its log lines: the client and the listener
   * (`rtmps`: over TLS). Built per line, not kept: nothing per connection.
   */
  private get peer(): { remote: string; protocol: RtmpProtocol } {
    return { remote: this.remoteAddress, protocol: this.options.protocol };
  }

  private get closed(): boolean {
    return this.state.kind === 'closed';
  }

  /** A player: told first on shutdown, so it hears Play.Stop rather than its publisher's end. */
  get playing(): boolean {
    return this.state.kind === 'playing';
  }

  get publishing(): boolean {
    return this.state.kind === 'publishing';
  }

  /**
   * Asks a publisher to go and publish elsewhere (the server is draining):
   * Enhanced RTMP's reconnect request when its connect declared it honours
   * one, and it is left to reconnect and hang up by itself; any other
   * publisher is told (NetStream.Unpublish.Success) and closed. True when a
   * reconnect request was sent.
   */
  requestReconnect(description: string): boolean {
    if (this.state.kind !== 'publishing') return false;
    if (!(this.capsEx & CAPS_EX_RECONNECT)) {
      this.closePublisher('shutdown');
      return false;
    }
    this.reply(onStatus({ level: 'status', code: 'NetConnection.Connect.ReconnectRequest', description }));
    return true;
  }

  /** Takes the bytes of one socket read (valid only during the call: they are parsed or copied). */
  receive(data: Buffer): void {
    if (this.closed) return;
    // One clock read per socket read: its messages all arrived with it.
    this.readAt = performance.now();
    try {
      this.connection.receive(data);
    } catch (err) {
      this.failOn(err);
    }
  }

  /**
   * The server's periodic sweep closes connections that make no progress,
   * each state by its own measure. One timer for all connections instead of
   * a socket timeout each, which Node re-arms on every read and write.
   * - handshake and connect: a deadline from accept (a peer that sends a
   *   byte now and then does not extend it);
   * - connected or being admitted: a deadline to start publishing or playing;
   * - publishing: a complete audio, video or data message within the idle
   *   timeout (bytes of a message that never ends are not progress);
   * - playing: bytes moving either way within the idle timeout, or, paused,
   *   a resume within --max-pause-seconds (a player that cannot take what it
   *   is sent is the hub's to close, see --player-stall-timeout-seconds);
   * - waiting for a publisher: --play-wait-seconds, kept by the hub;
   * - in every state, each message is finished within the idle timeout of
   *   its first chunk: it holds its whole length until then, and trickling
   *   its bytes, or sending other messages meanwhile, counts as progress.
   * A connection whose reads were held for what it left unread reads again
   * once that drained.
   */
  sweep(now: number): void {
    this.connection.resumeReadsIfDrained();
    const state = this.state;
    const { config } = this.options;
    const unfinishedSince = this.connection.unfinishedSince(now);
    if (unfinishedSince !== undefined && now - unfinishedSince >= config.idleTimeoutSeconds * 1000)
      return this.fail('message_timeout', 'message unfinished too long');
    switch (state.kind) {
      case 'handshake':
      case 'connecting':
        if (now - this.acceptedAt >= config.connectTimeoutSeconds * 1000)
          this.fail(state.kind === 'handshake' ? 'handshake_timeout' : 'connect_timeout', 'no connect in time');
        return;
      case 'connected':
        if (now - this.startDeadlineFrom >= config.startTimeoutSeconds * 1000) this.fail('start_timeout', 'no publish or play in time');
        return;
      case 'admitting':
        // The checks are the server's to answer, each within the idle timeout (admission.ts), not the client's
        // start deadline: a publish that waits out a dead pod's stream claim may need a whole Lease duration.
        if (now - state.since >= config.idleTimeoutSeconds * 1000) this.fail('idle_timeout', 'admission checks took too long');
        return;
      case 'publishing':
        return this.expectProgress(now, state.stream.stats.bytesIn);
      case 'playing':
        if (!state.player.paused) return this.expectProgress(now, this.connection.bytesReceived + this.connection.bytesSent);
        if (now - state.player.pausedAt >= config.maxPauseSeconds * 1000) this.fail('pause_timeout', 'paused too long');
        return;
    }
  }

  /** Closes the connection when `measure` has not changed for the idle timeout. */
  private expectProgress(now: number, measure: number): void {
    if (measure !== this.progress) {
      this.progress = measure;
      this.progressSince = now;
    } else if (now - this.progressSince >= this.options.config.idleTimeoutSeconds * 1000) {
      this.fail('idle_timeout', 'idle timeout');
    }
  }

  /** Server shutdown: tell the peer, then end the connection. */
  shutdown(): void {
    const state = this.state;
    if (state.kind === 'playing') state.player.close('shutdown');
    else if (state.kind === 'publishing') this.closePublisher('shutdown');
    else this.connection.end();
  }

  /**
   * Runs protocol work; a peer's fault or a bug of ours closes this
   * connection, never the server. Work that finishes an asynchronous step
   * runs even when the connection closed meanwhile, to let go of what the
   * step took.
   */
  private guarded(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.failOn(err);
    }
  }

  /** Counts and logs what `guarded` work threw, and closes the connection. */
  private failOn(err: unknown): void {
    this.reportFault(err);
    this.publishEnd = 'protocol_error';
    this.close();
  }

  /** Counts and logs a fault: the peer's (RtmpProtocolError) or a bug of ours. */
  private reportFault(err: unknown): void {
    const { stats, faults } = this.options;
    if (err instanceof RtmpProtocolError) {
      countBy(this.state.kind === 'handshake' ? stats.handshakeFailures : stats.protocolErrors, err.reason);
      this.trace.failed(err.reason);
      faults.log('warn', { ...this.peer, reason: err.reason, detail: err.message }, 'rtmp protocol error, closing');
    } else {
      countBy(stats.protocolErrors, 'internal');
      this.trace.failed('internal');
      faults.log('error', { ...this.peer, err }, 'rtmp internal error, closing');
    }
  }

  private handshakeDone(): void {
    if (this.state.kind !== 'handshake') return;
    this.options.logger.debug(this.peer, 'rtmp handshake done');
    this.setState({ kind: 'connecting' });
  }

  private fail(reason: string, message: string): void {
    if (this.state.kind === 'closed') return;
    const { stats } = this.options;
    countBy(this.state.kind === 'handshake' ? stats.handshakeFailures : stats.protocolErrors, reason);
    this.trace.failed(reason);
    this.options.faults.log('info', { ...this.peer, reason }, `rtmp ${message}, closing`);
    this.publishEnd = reason.endsWith('_timeout') ? 'timed_out' : 'protocol_error';
    this.close();
  }

  private close(): void {
    this.failed = true;
    this.cleanup();
  }

  /** The connection is gone: let go of whatever the last state held. */
  private cleanup(): void {
    const state = this.state;
    if (state.kind === 'closed') return;
    this.setState({ kind: 'closed' });
    this.connection.destroy();
    try {
      this.letGo(state);
    } catch (err) {
      // A bug in what the state held (a stream's subscriber, as the stream ends) closes no server: this runs
      // from the socket's close event and the sweep's timer too, where nothing else would catch it.
      this.reportFault(err);
    } finally {
      this.trace.close({ bytesIn: this.connection.bytesReceived, bytesOut: this.connection.bytesSent });
      this.options.onClose(this);
    }
  }

  /** Lets go of what `state`, the last before closed, held. */
  private letGo(state: SessionState): void {
    switch (state.kind) {
      case 'handshake':
        // A peer that hangs up mid-handshake (a port scanner, a health check) is counted too.
        if (!this.failed) countBy(this.options.stats.handshakeFailures, 'handshake_aborted');
        break;
      case 'admitting':
        state.abort.abort();
        break;
      case 'waiting':
        state.abort.abort();
        this.endLease();
        break;
      case 'publishing':
        this.stopPublishing(state.stream, this.publishEnd);
        break;
      case 'playing':
        this.stopPlaying(state.stream, state.player);
        break;
    }
  }

  private setState(next: SessionState): void {
    const { connections } = this.options.stats;
    if (this.state.kind !== 'closed') connections[this.state.kind]--;
    if (next.kind !== 'closed') connections[next.kind]++;
    if ((next.kind === 'publishing') !== (this.state.kind === 'publishing'))
      this.connection.setInboundLimits(this.inboundLimits(next.kind));
    // Back to nothing going on: the deadline to start runs again. A refused admission does not restart it,
    // but the time its checks took is not the client's.
    if (next.kind === 'connected') {
      if (this.state.kind === 'admitting') this.startDeadlineFrom += performance.now() - this.state.since;
      else this.startDeadlineFrom = performance.now();
    }
    // Each state that watches progress starts afresh.
    this.progress = -1;
    this.state = next;
  }

  /**
   * What the peer may make us hold in messages still arriving. Until it is
   * admitted to publish it has nothing large to send (commands, a player's
   * controls), and it takes from the other half of the server's budget than
   * publishers (InboundBudgets).
   */
  private inboundLimits(kind: SessionState['kind']): InboundLimits {
    const { config, inboundBudgets } = this.options;
    const { maxChunkStreams } = config;
    if (kind === 'publishing') {
      const maxPartialBytes = publisherPartialBytes(config);
      return { maxMessageBytes: config.maxMessageBytes, maxPartialBytes, budget: inboundBudgets.publishing, maxChunkStreams };
    }
    const small = config.maxMessageBytesBeforePublish;
    return { maxMessageBytes: small, maxPartialBytes: small, budget: inboundBudgets.others, maxChunkStreams };
  }

  private onMessage(typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    const state = this.state;
    if (state.kind === 'admitting') {
      this.hold(state, typeId, streamId, timestamp, body);
      return;
    }
    switch (typeId) {
      case MessageType.video:
        if (state.kind === 'publishing') state.stream.pushVideo(timestamp, body, this.readAt);
        return;
      case MessageType.audio:
        if (state.kind === 'publishing') state.stream.pushAudio(timestamp, body, this.readAt);
        return;
      case MessageType.dataAmf0:
      case MessageType.dataAmf3:
        if (state.kind === 'publishing') this.onDataMessage(state.stream, typeId, timestamp, body);
        return;
      case MessageType.commandAmf0:
      case MessageType.commandAmf3:
        this.onCommand(parseCommand(typeId, body), streamId);
        return;
      case MessageType.aggregate:
        if (state.kind === 'publishing')
          splitAggregate(body, timestamp, (subType, subTimestamp, subBody) =>
            this.onMessage(subType === MessageType.aggregate ? 0 : subType, streamId, subTimestamp, subBody),
          );
        return;
      default:
        // Shared objects, unknown types: not ours to serve. Per message, so one object, not this.peer's two.
        this.options.logger.debug({ remote: this.remoteAddress, protocol: this.options.protocol, typeId }, 'rtmp message ignored');
    }
  }

  /** Keeps a message for after the admission decision, in order, as if the checks had answered at once. */
  private hold(state: Admitting, typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    state.heldBytes += body.length;
    if (state.heldBytes > HELD_MESSAGES * this.options.config.maxMessageBytesBeforePublish)
      throw new RtmpProtocolError('admission_backlog_exceeded');
    state.held.push({ typeId, streamId, timestamp, body: Buffer.from(body) });
  }

  private onDataMessage(stream: Stream, typeId: number, timestamp: number, body: Buffer): void {
    const values = parseData(typeId, body);
    if (values[0] === '@setDataFrame') values.shift();
    if (values[0] !== 'onMetaData') return;
    const raw = values[1];
    const metadata: AmfObject = isObject(raw) ? raw : (Object.create(null) as AmfObject);
    // Re-encoded without @setDataFrame: the form players and FLV files carry.
    const encoded = encodeAmf0('onMetaData', new EcmaArray(metadata));
    stream.setMetadata(timestamp, encoded, { ...metadata }, performance.now());
  }

  private onCommand(cmd: Command, streamId: number): void {
    if (this.state.kind === 'connecting' && cmd.name !== 'connect') {
      throw new RtmpProtocolError('command_before_connect', `${cmd.name} before connect`);
    }
    switch (cmd.name) {
      case 'connect':
        return this.onConnect(cmd);
      case 'releaseStream':
      case 'FCPublish':
        return this.reply(result(cmd.transactionId));
      case 'createStream':
        return this.onCreateStream(cmd);
      case 'publish':
        return this.onPublishOrPlay('publish', cmd, streamId);
      case 'play':
        return this.onPublishOrPlay('play', cmd, streamId);
      case 'FCUnpublish':
        this.connection.sendMessage(ChunkStreamId.command, MessageType.commandAmf0, 0, 0, onFCUnpublish(stripQuery(streamName(cmd))));
        this.reply(result(cmd.transactionId));
        if (this.state.kind === 'publishing') this.stopStream();
        return;
      case 'deleteStream':
      case 'closeStream':
        return this.stopStream();
      case 'getStreamLength':
        return this.reply(result(cmd.transactionId, 0));
      case 'pause':
        return this.onPause(cmd);
      case 'receiveAudio':
      case 'receiveVideo':
      case '_result':
      case '_error':
      case 'onBWDone':
      case '_checkbw':
        return;
      default:
        countBy(this.options.stats.commandErrors, 'unknown');
        this.options.logger.debug({ ...this.peer, command: cmd.name.slice(0, 64) }, 'rtmp unknown command');
        if (cmd.transactionId > 0)
          this.reply(errorResult(cmd.transactionId, 'NetConnection.Call.Failed', `unknown command ${cmd.name.slice(0, 64)}`));
    }
  }

  private onConnect(cmd: Command): void {
    if (this.state.kind !== 'connecting') throw new RtmpProtocolError('duplicate_connect');
    if (!isObject(cmd.object)) throw new RtmpProtocolError('bad_connect', 'connect without a command object');
    const { app, tcUrl, objectEncoding, capsEx } = cmd.object;
    this.tcUrl = typeof tcUrl === 'string' ? tcUrl : undefined;
    this.capsEx = typeof capsEx === 'number' ? capsEx : 0;
    // node-media-server dies on a connect without tcUrl; the app alone is enough for us.
    const name = typeof app === 'string' ? stripQuery(app) : this.tcUrl ? appFromTcUrl(this.tcUrl) : undefined;
    if (!name) {
      countBy(this.options.stats.commandErrors, 'connect');
      this.reply(errorResult(cmd.transactionId, 'NetConnection.Connect.Rejected', 'connect names no app'));
      throw new RtmpProtocolError('bad_connect', 'connect without app');
    }
    this.app = name;
    this.setState({ kind: 'connected' });
    this.connection.send(windowAckSize(WINDOW_ACK_SIZE));
    this.connection.send(setPeerBandwidth(WINDOW_ACK_SIZE, BandwidthLimit.dynamic));
    this.connection.setChunkSize(this.options.config.chunkSize);
    this.reply(connectResult(cmd.transactionId, objectEncoding === 3 ? 3 : 0));
    this.trace.connected(name);
    // The tcUrl's query may carry credentials (a signed URL, a token): it is not logged.
    this.options.logger.debug({ ...this.peer, app: name, tcUrl: this.tcUrl?.replace(/\?.*$/, '') }, 'rtmp connect');
  }

  private onCreateStream(cmd: Command): void {
    if (this.createdStreams >= MAX_STREAMS) {
      countBy(this.options.stats.commandErrors, 'createStream');
      this.reply(errorResult(cmd.transactionId, 'NetConnection.Call.Failed', 'too many streams'));
      return;
    }
    this.createdStreams++;
    this.reply(result(cmd.transactionId, this.createdStreams));
  }

  /** publish and play: admitted first, then the hub is asked. */
  private onPublishOrPlay(action: AdmissionAction, cmd: Command, streamId: number): void {
    const name = streamName(cmd);
    const key = stripQuery(name);
    if (this.state.kind !== 'connected') {
      countBy(this.options.stats.commandErrors, action);
      const code = action === 'publish' ? 'NetStream.Publish.BadConnection' : 'NetStream.Play.Failed';
      this.status(streamId, { level: 'error', code, description: 'connection is already publishing or playing' });
      return;
    }
    if (action === 'publish' && !this.options.mayStartPublish()) {
      // Before the checks: a publish loop must not reach an auth callback either.
      this.options.stats.connectionsRefused.publish_rate++;
      this.refuse(action, streamId, key, 'NetStream.Publish.Rejected', 'too many publishes from this address; try again later');
      this.connection.end();
      return;
    }
    const checks = this.options.admission;
    if (checks.length === 0) return this.admitted(action, streamId, key);
    const abort = new AbortController();
    const state: Admitting = { kind: 'admitting', action, streamId, key, abort, held: [], heldBytes: 0, since: performance.now() };
    this.setState(state);
    const request: AdmissionRequest = {
      action,
      app: this.app,
      key,
      query: queryOf(name),
      tcUrl: this.tcUrl,
      remoteAddress: this.remoteAddress,
      protocol: this.options.protocol,
      signal: abort.signal,
      startedAt: state.since,
    };
    const logError = (obj: object, msg: string) => this.options.logger.error({ ...this.peer, ...obj }, msg);
    void admit(checks, request, logError).then((decision) => this.guarded(() => this.decided(state, decision)));
  }

  private decided(state: Admitting, decision: AdmissionDecision): void {
    if (this.state !== state) {
      // Closed while the checks ran: the session never begins, so what a check granted it goes back.
      if (decision.allow) decision.lease?.release();
      return;
    }
    this.setState({ kind: 'connected' });
    if (decision.allow) this.admitted(state.action, state.streamId, state.key, decision.lease);
    else {
      this.refuse(state.action, state.streamId, state.key, decision.code, decision.description);
      if (decision.close) {
        this.connection.end();
        return;
      }
    }
    for (const m of state.held) {
      if (this.closed) return;
      this.onMessage(m.typeId, m.streamId, m.timestamp, m.body);
    }
  }

  private admitted(action: AdmissionAction, streamId: number, key: string, lease?: AdmissionLease): void {
    this.lease = lease;
    if (action === 'publish') this.startPublishing(streamId, key);
    else this.startPlaying(streamId, key);
    // Attached once live: a lease ended meanwhile (a key revoked during admission) ends the session at once.
    if (this.state.kind === 'publishing' || this.state.kind === 'waiting') lease?.attach(() => this.guarded(() => this.revoked()));
  }

  /** The check that admitted this publish or play withdrew it (its key was revoked): tell the client and close. */
  private revoked(): void {
    const state = this.state;
    if (state.kind === 'publishing') this.closePublisher('revoked');
    else if (state.kind === 'playing') state.player.close('revoked');
    else if (state.kind === 'waiting') {
      this.stopStream();
      this.connection.end();
    }
  }

  private endLease(): void {
    this.lease?.release();
    this.lease = undefined;
  }

  private refuse(action: AdmissionAction, streamId: number, key: string, code: string, description: string): void {
    countBy(this.options.stats.commandErrors, action);
    // A player may retry a refused play at once, over and over, with no rate limit like a publisher's.
    this.options.faults.log(
      'info',
      { ...this.peer, app: shownName(this.app), key: shownName(key), code, reason: description },
      `rtmp ${action} refused`,
    );
    this.status(streamId, { level: 'error', code, description, details: key });
  }

  private startPublishing(streamId: number, key: string): void {
    let stream: Stream;
    try {
      // The hub decides last: a refused publisher never hears Publish.Start.
      stream = this.options.hub.publish(this.app, key, {
        protocol: this.options.protocol,
        remoteAddress: this.remoteAddress,
        close: (reason) => this.closePublisher(reason),
      });
    } catch (err) {
      this.endLease();
      if (!(err instanceof PublishRefused)) throw err;
      this.refuse('publish', streamId, key, err.code, err.message);
      return;
    }
    this.setState({ kind: 'publishing', streamId, stream });
    this.connection.send(streamBegin(streamId));
    this.connection.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, streamId, 0, onFCPublish(key));
    this.status(streamId, {
      level: 'status',
      code: 'NetStream.Publish.Start',
      description: `${key} is now published.`,
      details: key,
      clientid: 'flux-rtmpd',
    });
    this.trace.began('publish', this.app, key);
    this.trace.stream(stream);
    this.options.logger.info({ ...this.peer, stream: stream.id, ...this.trace.logFields() }, 'rtmp publish');
  }

  private startPlaying(streamId: number, key: string): void {
    const player = new RtmpPlayer(this.connection, this.options.protocol, streamId, key);
    const state: Waiting = { kind: 'waiting', player, abort: new AbortController() };
    this.setState(state);
    const waitMs = this.options.config.playWaitSeconds * 1000;
    void this.options.hub
      .subscribe(this.app, key, player, waitMs, state.abort.signal)
      .then((stream) => this.guarded(() => this.subscribed(state, key, stream)));
  }

  private subscribed(state: Waiting, key: string, stream: Stream | undefined): void {
    const { player } = state;
    if (this.state !== state) {
      // Closed, or stopped by deleteStream, while waiting.
      stream?.unsubscribe(player);
      return;
    }
    if (!stream) {
      this.setState({ kind: 'connected' });
      this.endLease();
      countBy(this.options.stats.commandErrors, 'play');
      this.status(player.streamId, {
        level: 'error',
        code: 'NetStream.Play.StreamNotFound',
        description: `no stream ${this.app}/${key} is live`,
        details: key,
      });
      return;
    }
    this.setState({ kind: 'playing', stream, player });
    this.trace.began('play', this.app, key);
    this.trace.stream(stream);
    this.options.logger.info({ ...this.peer, stream: stream.id, ...this.trace.logFields() }, 'rtmp play');
  }

  private onPause(cmd: Command): void {
    const state = this.state;
    if (state.kind !== 'playing') {
      countBy(this.options.stats.commandErrors, 'pause');
      if (cmd.transactionId > 0) this.reply(errorResult(cmd.transactionId, 'NetStream.Pause.Failed', 'not playing'));
      return;
    }
    state.player.pause(cmd.args[0] === true, state.stream.videoHeader !== undefined);
  }

  /** deleteStream, closeStream, FCUnpublish: back to connected, ready for another publish or play. */
  private stopStream(): void {
    const state = this.state;
    switch (state.kind) {
      case 'publishing':
        this.stopPublishing(state.stream, 'publisher_closed');
        this.status(state.streamId, { level: 'status', code: 'NetStream.Unpublish.Success', description: 'stream is now unpublished' });
        break;
      case 'playing':
        this.stopPlaying(state.stream, state.player);
        break;
      case 'waiting':
        state.abort.abort();
        this.endLease();
        break;
      default:
        return;
    }
    this.setState({ kind: 'connected' });
  }

  /** The hub ends the publisher: on shutdown, or when it gives up on it. */
  private closePublisher(reason: CloseReason): void {
    const state = this.state;
    if (state.kind !== 'publishing') return;
    const ended = PUBLISHER_ENDED[reason];
    if (ended) this.status(state.streamId, ended);
    this.stopPublishing(state.stream, PUBLISHER_END_REASON[reason]);
    this.setState({ kind: 'connected' });
    this.connection.end();
  }

  private stopPublishing(stream: Stream, reason: StreamEndReason): void {
    this.endLease();
    this.options.hub.unpublish(stream, reason);
    this.trace.ended({ bytesIn: stream.stats.bytesIn, bytesOut: stream.bytesOut });
    this.options.logger.info({ ...this.peer, stream: stream.id }, 'rtmp unpublish');
  }

  private stopPlaying(stream: Stream, player: RtmpPlayer): void {
    this.endLease();
    stream.unsubscribe(player);
    this.trace.ended({ bytesOut: this.connection.bytesSent });
  }

  /** Sends a connection-level reply (_result, _error) on the command chunk stream. */
  private reply(body: Buffer): void {
    this.connection.sendMessage(ChunkStreamId.command, MessageType.commandAmf0, 0, 0, body);
  }

  private status(streamId: number, info: StatusInfo): void {
    this.connection.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, streamId, 0, onStatus(info));
  }
}
