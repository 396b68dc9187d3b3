// One server-side RTMP connection: handshake, then the command state machine
// (connect → createStream → publish | play), media into the hub, replies as
// FMS/SRS send them. Anything a peer does wrong ends in a RtmpProtocolError
// and a closed connection, counted by reason, never a crash.
import type { Socket } from 'node:net';
import type { Config } from '../config.ts';
import { PublishRefused, type StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import type { CloseReason } from '../hub/subscriber.ts';
import { splitAggregate } from './aggregate.ts';
import { EcmaArray, encodeAmf0, type AmfObject } from './amf0.ts';
import { ChunkReader, MessageType } from './chunk-reader.ts';
import { ChunkStreamId } from './chunk-writer.ts';
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
} from './commands.ts';
import {
  BandwidthLimit,
  acknowledgement,
  parseUserControl,
  pingResponse,
  readControlValue,
  setChunkSize,
  setPeerBandwidth,
  streamBegin,
  UserControlEvent,
  windowAckSize,
} from './control.ts';
import { RtmpProtocolError } from './errors.ts';
import { ServerHandshake } from './handshake.ts';
import type { RtmpLogger } from './logger.ts';
import { RtmpPlayer, type PlayerConnection } from './player.ts';
import { countBy, type ConnectionRole, type RtmpStats } from './stats.ts';
import { ConnectionTrace } from '../telemetry/tracing.ts';
import { TickWriter } from './tick-writer.ts';

export type SessionConfig = Pick<Config, 'chunkSize' | 'playWaitSeconds' | 'idleTimeoutSeconds'>;

export interface SessionOptions {
  hub: StreamHub;
  config: SessionConfig;
  logger: RtmpLogger;
  stats: RtmpStats;
  handshakeTimeoutMs: number;
  onClose: (session: RtmpSession) => void;
}

/** The acknowledgement window we announce and, until the peer names its own, honour. */
const WINDOW_ACK_SIZE = 2_500_000;
/** Message streams one connection may create: a publisher or player needs one. */
const MAX_STREAMS = 8;

/** `live?token=x` → `live`; `live/` → `live`. */
export function stripQuery(name: string): string {
  const q = name.indexOf('?');
  return (q < 0 ? name : name.slice(0, q)).replace(/^\/+|\/+$/g, '');
}

/** The app from a tcUrl's path, for clients whose connect object lacks `app`. */
function appFromTcUrl(tcUrl: string): string | undefined {
  const match = /^[a-z]+:\/\/[^/]+\/([^?]*)/i.exec(tcUrl);
  return match?.[1] ? stripQuery(match[1]) : undefined;
}

export class RtmpSession implements PlayerConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  role: ConnectionRole = 'handshaking';
  app = '';
  tcUrl: string | undefined;
  streamKey: string | undefined;
  private readonly options: SessionOptions;
  private handshake: ServerHandshake | undefined;
  private readonly reader: ChunkReader;
  private outChunkSize = 128;
  private connected = false;
  private objectEncoding = 0;
  private createdStreams = 0;
  private bytesReceived = 0;
  private bytesSent = 0;
  /** The connection's trace span (a no-op object when tracing is off). */
  private readonly trace: ConnectionTrace;
  private lastAckAt = 0;
  private ackWindow = WINDOW_ACK_SIZE;
  private stream: Stream | undefined;
  private publishStreamId = 0;
  private player: RtmpPlayer | undefined;
  /** The stream the player is subscribed to. */
  private playing: Stream | undefined;
  private playWait: AbortController | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Closed by us for a counted reason. */
  private failed = false;
  private readonly writer: TickWriter;
  /** Idleness is not watched while a player waits for its publisher or is paused. */
  private idleWatched = true;
  /** Bytes moved either way when the idle sweep last saw a change, and when that was. */
  private idleBytes = -1;
  private idleSince = 0;

  constructor(socket: Socket, options: SessionOptions) {
    this.socket = socket;
    this.writer = new TickWriter(socket);
    this.options = options;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.trace = new ConnectionTrace(socket.remoteAddress, socket.remotePort);
    this.handshake = new ServerHandshake((bytes) => this.send(bytes));
    // Reads land in a buffer shared by every connection (shared-read.ts), so a
    // borrowed body is valid until this read is handled; whatever keeps a
    // packet longer (GOP cache, headers, last keyframe, FLV tags, queued
    // socket writes) copies it.
    this.reader = new ChunkReader((typeId, streamId, timestamp, body) => this.onMessage(typeId, streamId, timestamp, body), {
      borrowBodies: true,
    });
    options.stats.connections.handshaking++;
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.fail('handshake_timeout', 'handshake timeout'), options.handshakeTimeoutMs);
    socket.on('error', (err) => options.logger.debug({ remote: this.remoteAddress, err: err.message }, 'rtmp socket error'));
    socket.on('close', () => this.cleanup());
  }

  get pendingBytes(): number {
    return this.writer.pendingBytes;
  }

  /** Writes bytes already in chunk form (control messages) in this tick's write. */
  send(bytes: Buffer): void {
    if (this.closed) return;
    this.countSent(this.writer.write(bytes));
  }

  /** Writes one message as chunks of the negotiated size in this tick's write. */
  sendMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    if (this.closed) return;
    this.countSent(this.writer.writeMessage(csid, typeId, streamId, timestamp, body, this.outChunkSize));
  }

  /**
   * The server's periodic idle sweep: a connection that moved no byte for
   * the idle timeout is closed. One timer for all connections instead of a
   * socket timeout each, which Node re-arms on every read and write.
   */
  sweepIdle(now: number): void {
    const moved = this.socket.bytesRead + this.socket.bytesWritten;
    if (!this.idleWatched || moved !== this.idleBytes) {
      this.idleBytes = moved;
      this.idleSince = now;
    } else if (now - this.idleSince >= this.options.config.idleTimeoutSeconds * 1000) {
      this.fail(this.role === 'handshaking' ? 'handshake_timeout' : 'idle_timeout', 'idle timeout');
    }
  }

  end(graceful: boolean): void {
    if (graceful) this.writer.end();
    else this.socket.destroy();
  }

  /** Server shutdown: tell the peer, then end the connection. */
  shutdown(): void {
    if (this.player) this.player.close('shutdown');
    else if (this.stream) this.closePublisher('shutdown');
    else this.writer.end();
  }

  /** Takes the bytes of one socket read (valid only during the call: they are parsed or copied). */
  receive(data: Buffer): void {
    if (this.closed) return;
    const { stats } = this.options;
    stats.bytesIn += data.length;
    try {
      let rest: Buffer | undefined = data;
      if (this.handshake) {
        rest = this.handshake.push(data);
        if (rest === undefined) return;
        this.handshakeDone();
      }
      this.bytesReceived += data.length;
      if (this.bytesReceived - this.lastAckAt >= this.ackWindow) {
        this.lastAckAt = this.bytesReceived;
        this.send(acknowledgement(this.bytesReceived));
      }
      if (rest.length > 0) this.reader.push(rest);
    } catch (err) {
      if (err instanceof RtmpProtocolError) {
        if (this.role === 'handshaking') countBy(stats.handshakeFailures, err.reason);
        else countBy(stats.protocolErrors, err.reason);
        this.trace.failed(err.reason);
        this.options.logger.warn({ remote: this.remoteAddress, reason: err.reason, detail: err.message }, 'rtmp protocol error, closing');
      } else {
        // A bug of ours: this connection goes, the server stays.
        countBy(stats.protocolErrors, 'internal');
        this.trace.failed('internal');
        this.options.logger.error({ remote: this.remoteAddress, err }, 'rtmp internal error, closing');
      }
      this.close();
    }
  }

  private handshakeDone(): void {
    this.options.logger.debug({ remote: this.remoteAddress, kind: this.handshake?.kind }, 'rtmp handshake done');
    this.handshake = undefined;
    clearTimeout(this.handshakeTimer);
    this.setRole('idle');
  }

  private fail(reason: string, message: string): void {
    if (this.closed) return;
    const { stats } = this.options;
    countBy(this.role === 'handshaking' ? stats.handshakeFailures : stats.protocolErrors, reason);
    this.trace.failed(reason);
    this.options.logger.info({ remote: this.remoteAddress, reason }, `rtmp ${message}, closing`);
    this.close();
  }

  private close(): void {
    this.failed = true;
    this.reader.stop();
    this.socket.destroy();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    this.reader.stop();
    this.playWait?.abort();
    this.stopPublishing();
    this.stopPlaying();
    // A peer that hangs up mid-handshake (a port scanner, a health check) is counted too.
    if (this.role === 'handshaking' && !this.failed) countBy(this.options.stats.handshakeFailures, 'handshake_aborted');
    this.options.stats.connections[this.role]--;
    this.trace.close({ bytesIn: this.bytesReceived, bytesOut: this.bytesSent });
    this.options.onClose(this);
  }

  private setRole(role: ConnectionRole): void {
    const { connections } = this.options.stats;
    connections[this.role]--;
    connections[role]++;
    this.role = role;
  }

  private onMessage(typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    this.options.stats.messagesIn++;
    switch (typeId) {
      case MessageType.video:
        if (this.stream) this.stream.pushVideo(timestamp, body, performance.now());
        return;
      case MessageType.audio:
        if (this.stream) this.stream.pushAudio(timestamp, body, performance.now());
        return;
      case MessageType.dataAmf0:
      case MessageType.dataAmf3:
        this.onDataMessage(typeId, timestamp, body);
        return;
      case MessageType.commandAmf0:
      case MessageType.commandAmf3:
        this.onCommand(parseCommand(typeId, body), streamId);
        return;
      case MessageType.userControl: {
        const control = parseUserControl(body);
        if (control.event === UserControlEvent.pingRequest) this.send(pingResponse(control.value));
        // SetBufferLength, PingResponse: a live server has nothing to adjust.
        return;
      }
      case MessageType.windowAckSize: {
        const size = readControlValue(body, 'window_ack_size');
        // A tiny window would have us acknowledge every few bytes.
        this.ackWindow = Math.max(size, 4096);
        return;
      }
      case MessageType.aggregate:
        if (this.stream)
          splitAggregate(body, timestamp, (subType, subTimestamp, subBody) =>
            this.onMessage(subType === MessageType.aggregate ? 0 : subType, streamId, subTimestamp, subBody),
          );
        return;
      case MessageType.setChunkSize:
      case MessageType.abort:
      case MessageType.acknowledgement:
      case MessageType.setPeerBandwidth:
        return; // chunk size and abort were applied by the reader; the rest needs nothing
      default:
        // Shared objects, aggregates, unknown types: not ours to serve.
        this.options.logger.debug({ remote: this.remoteAddress, typeId }, 'rtmp message ignored');
    }
  }

  private onDataMessage(typeId: number, timestamp: number, body: Buffer): void {
    if (!this.stream) return;
    const values = parseData(typeId, body);
    if (values[0] === '@setDataFrame') values.shift();
    if (values[0] !== 'onMetaData') return;
    const raw = values[1];
    const metadata: AmfObject = isObject(raw) ? raw : (Object.create(null) as AmfObject);
    // Re-encoded without @setDataFrame: the form players and FLV files carry.
    const encoded = encodeAmf0('onMetaData', new EcmaArray(metadata));
    this.stream.setMetadata(timestamp, encoded, { ...metadata }, performance.now());
  }

  private onCommand(cmd: Command, streamId: number): void {
    if (!this.connected && cmd.name !== 'connect') throw new RtmpProtocolError('command_before_connect', `${cmd.name} before connect`);
    switch (cmd.name) {
      case 'connect':
        return this.onConnect(cmd);
      case 'releaseStream':
      case 'FCPublish':
        return this.reply(result(cmd.transactionId));
      case 'createStream':
        return this.onCreateStream(cmd);
      case 'publish':
        return this.onPublish(cmd, streamId);
      case 'FCUnpublish': {
        const name = typeof cmd.args[0] === 'string' ? stripQuery(cmd.args[0]) : '';
        this.sendMessage(ChunkStreamId.command, MessageType.commandAmf0, 0, 0, onFCUnpublish(name));
        this.reply(result(cmd.transactionId));
        if (this.stream) this.unpublishWithStatus();
        return;
      }
      case 'deleteStream':
      case 'closeStream':
        if (this.stream) this.unpublishWithStatus();
        this.stopPlaying();
        if (this.role !== 'handshaking') this.setRole('idle');
        return;
      case 'play':
        void this.onPlay(cmd, streamId);
        return;
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
        this.options.logger.debug({ remote: this.remoteAddress, command: cmd.name.slice(0, 64) }, 'rtmp unknown command');
        if (cmd.transactionId > 0)
          this.reply(errorResult(cmd.transactionId, 'NetConnection.Call.Failed', `unknown command ${cmd.name.slice(0, 64)}`));
    }
  }

  private onConnect(cmd: Command): void {
    if (this.connected) throw new RtmpProtocolError('duplicate_connect');
    if (!isObject(cmd.object)) throw new RtmpProtocolError('bad_connect', 'connect without a command object');
    const { app, tcUrl, objectEncoding } = cmd.object;
    this.tcUrl = typeof tcUrl === 'string' ? tcUrl : undefined;
    // node-media-server dies on a connect without tcUrl; the app alone is enough for us.
    const name = typeof app === 'string' ? stripQuery(app) : this.tcUrl ? appFromTcUrl(this.tcUrl) : undefined;
    if (!name) {
      countBy(this.options.stats.commandErrors, 'connect');
      this.reply(errorResult(cmd.transactionId, 'NetConnection.Connect.Rejected', 'connect names no app'));
      throw new RtmpProtocolError('bad_connect', 'connect without app');
    }
    this.app = name;
    this.objectEncoding = objectEncoding === 3 ? 3 : 0;
    this.connected = true;
    this.send(windowAckSize(WINDOW_ACK_SIZE));
    this.send(setPeerBandwidth(WINDOW_ACK_SIZE, BandwidthLimit.dynamic));
    this.send(setChunkSize(this.options.config.chunkSize));
    this.outChunkSize = this.options.config.chunkSize;
    this.reply(connectResult(cmd.transactionId, this.objectEncoding));
    this.trace.connected(name);
    this.options.logger.debug({ remote: this.remoteAddress, app: name, tcUrl: this.tcUrl }, 'rtmp connect');
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

  private onPublish(cmd: Command, streamId: number): void {
    const key = typeof cmd.args[0] === 'string' ? stripQuery(cmd.args[0]) : '';
    if (this.stream || this.player || this.playWait) {
      countBy(this.options.stats.commandErrors, 'publish');
      this.status(streamId, {
        level: 'error',
        code: 'NetStream.Publish.BadConnection',
        description: 'connection is already publishing or playing',
      });
      return;
    }
    let stream: Stream;
    try {
      // The hub decides first: a refused publisher never hears Publish.Start.
      stream = this.options.hub.publish(this.app, key, {
        protocol: 'rtmp',
        remoteAddress: this.remoteAddress,
        close: (reason) => this.closePublisher(reason),
      });
    } catch (err) {
      if (!(err instanceof PublishRefused)) throw err;
      countBy(this.options.stats.commandErrors, 'publish');
      this.options.logger.info({ remote: this.remoteAddress, app: this.app, key, reason: err.message }, 'rtmp publish refused');
      this.status(streamId, { level: 'error', code: err.code, description: err.message, details: key });
      return;
    }
    this.stream = stream;
    this.streamKey = key;
    this.publishStreamId = streamId;
    this.setRole('publisher');
    this.send(streamBegin(streamId));
    this.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, streamId, 0, onFCPublish(key));
    this.status(streamId, {
      level: 'status',
      code: 'NetStream.Publish.Start',
      description: `${key} is now published.`,
      details: key,
      clientid: 'flux-rtmpd',
    });
    this.trace.began('publish', this.app, key);
    this.trace.stream(stream);
    this.options.logger.info({ remote: this.remoteAddress, stream: stream.id, ...this.trace.logFields() }, 'rtmp publish');
  }

  private async onPlay(cmd: Command, streamId: number): Promise<void> {
    const key = typeof cmd.args[0] === 'string' ? stripQuery(cmd.args[0]) : '';
    if (this.stream || this.player || this.playWait) {
      countBy(this.options.stats.commandErrors, 'play');
      this.status(streamId, { level: 'error', code: 'NetStream.Play.Failed', description: 'connection is already publishing or playing' });
      return;
    }
    const { hub, config } = this.options;
    const player = new RtmpPlayer(this, streamId, key);
    const wait = new AbortController();
    this.playWait = wait;
    // Waiting for a publisher is not idleness.
    this.idleWatched = false;
    let stream: Stream | undefined;
    try {
      stream = await hub.subscribe(this.app, key, player, config.playWaitSeconds * 1000, wait.signal);
    } finally {
      this.playWait = undefined;
    }
    if (this.closed) {
      stream?.unsubscribe(player);
      return;
    }
    this.idleWatched = true;
    if (!stream) {
      countBy(this.options.stats.commandErrors, 'play');
      this.status(streamId, {
        level: 'error',
        code: 'NetStream.Play.StreamNotFound',
        description: `no stream ${this.app}/${key} is live`,
        details: key,
      });
      return;
    }
    this.player = player;
    this.playing = stream;
    this.streamKey = key;
    this.setRole('player');
    player.start(); // a stream with nothing cached yet has not triggered it
    this.trace.began('play', this.app, key);
    this.trace.stream(stream);
    this.options.logger.info({ remote: this.remoteAddress, stream: stream.id, ...this.trace.logFields() }, 'rtmp play');
  }

  private onPause(cmd: Command): void {
    if (!this.player || !this.playing) {
      countBy(this.options.stats.commandErrors, 'pause');
      if (cmd.transactionId > 0) this.reply(errorResult(cmd.transactionId, 'NetStream.Pause.Failed', 'not playing'));
      return;
    }
    const paused = cmd.args[0] === true;
    this.player.pause(paused, this.playing.videoHeader !== undefined);
    // A paused player neither sends nor receives; that is not idleness.
    this.idleWatched = !paused;
  }

  private closePublisher(reason: CloseReason): void {
    if (!this.stream) return;
    if (reason === 'shutdown') {
      this.status(this.publishStreamId, { level: 'status', code: 'NetStream.Unpublish.Success', description: 'server shutting down' });
    }
    this.stopPublishing();
    this.writer.end();
  }

  private unpublishWithStatus(): void {
    const streamId = this.publishStreamId;
    this.stopPublishing();
    this.status(streamId, { level: 'status', code: 'NetStream.Unpublish.Success', description: 'stream is now unpublished' });
    this.setRole('idle');
  }

  private stopPublishing(): void {
    const stream = this.stream;
    if (!stream) return;
    this.stream = undefined;
    this.options.hub.unpublish(stream);
    this.trace.ended({ bytesIn: stream.stats.bytesIn, bytesOut: stream.stats.bytesOut });
    this.options.logger.info({ remote: this.remoteAddress, stream: stream.id }, 'rtmp unpublish');
  }

  private countSent(length: number): void {
    if (length === 0) return; // dropped: the connection is ending
    this.options.stats.bytesOut += length;
    this.options.stats.messagesOut++;
    this.bytesSent += length;
  }

  private stopPlaying(): void {
    if (this.player && this.playing) this.playing.unsubscribe(this.player);
    if (this.player) this.trace.ended({ bytesOut: this.bytesSent });
    if (this.player) this.player.closed = true;
    this.player = undefined;
    this.playing = undefined;
  }

  /** Sends a connection-level reply (_result, _error) on the command chunk stream. */
  private reply(body: Buffer): void {
    this.sendMessage(ChunkStreamId.command, MessageType.commandAmf0, 0, 0, body);
  }

  private status(streamId: number, info: StatusInfo): void {
    this.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, streamId, 0, onStatus(info));
  }
}
