// A small, allocation-lean RTMP client: the integration tests, the Enhanced
// RTMP HEVC test and the load benchmark (hundreds of publishers and players in
// one process) drive the server with it. It shares rtmpd's wire code and its
// connection object, so writes made in one tick leave in one socket write.
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import type { MediaKind } from '../../src/flv/media-kind.ts';
import { RtmpConnection } from '../../src/rtmp/io/connection.ts';
import { SocketIo } from '../../src/rtmp/io/socket-io.ts';
import type { AmfObject, AmfValue } from '../../src/rtmp/wire/amf-values.ts';
import { type AmfEncodable, EcmaArray, encodeAmf0 } from '../../src/rtmp/wire/amf0.ts';
import { command, isObject, parseCommand, type Command } from '../../src/rtmp/wire/commands.ts';
import { setBufferLength } from '../../src/rtmp/wire/control.ts';
import { ClientHandshake, type HandshakeKind } from '../../src/rtmp/wire/handshake.ts';
import { ChunkStreamId, MessageType } from '../../src/rtmp/wire/message-types.ts';
import { RtmpCalls, withinTime } from './rtmp-calls.ts';

/** Shared by the clients of one process (the benchmark runs hundreds), as a server shares it among its connections. */
const processIo = new SocketIo();

export interface RtmpClientOptions {
  /** 'digest' (FP9, as OBS/FFmpeg) or 'simple'. Default 'digest'. */
  handshake?: HandshakeKind;
  /** Outbound chunk size announced after the handshake. Default 65536. */
  chunkSize?: number;
  /** Limit for connect, publish and play to be answered. Default 10 s. */
  timeoutMs?: number;
  /** tcUrl sent in connect; null leaves it out. Default rtmp://host:port/app. */
  tcUrl?: string | null;
  /** Extra connect properties (flashVer, objectEncoding, ...). */
  connectProperties?: Record<string, AmfEncodable>;
  /** Read buffer and write batching; by default shared by all clients of the process. */
  io?: SocketIo;
  /** The loopback address the connection comes from (127.0.0.x), to be a client of its own; the kernel's choice by default. */
  localAddress?: string;
}

/** An onStatus info object: level, code, description and whatever else came. */
export type StatusInfo = AmfObject & { level?: AmfValue; code?: AmfValue; description?: AmfValue };

/** An RTMP failure with the onStatus / _error code the server sent. */
class RtmpStatusError extends Error {
  readonly code: string;
  readonly info: StatusInfo | undefined;
  constructor(code: string, message: string, info?: StatusInfo) {
    super(message);
    this.name = 'RtmpStatusError';
    this.code = code;
    this.info = info;
  }
}

export interface RtmpClientEvents {
  media: [kind: MediaKind, timestamp: number, body: Buffer];
  status: [info: StatusInfo];
  close: [error: Error | undefined];
}

interface ParsedUrl {
  host: string;
  port: number;
  app: string;
  streamKey: string;
  tcUrl: string;
}

/** rtmp://host[:port]/app/key → its parts; the key keeps any query string. */
function parseRtmpUrl(url: string): ParsedUrl {
  const match = /^rtmp:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/([^/?]+)(?:\/(.*))?$/i.exec(url);
  if (!match) throw new Error(`not an rtmp://host[:port]/app/key URL: ${url}`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  const port = match[2] ? Number(match[2]) : 1935;
  const app = match[3]!;
  return { host, port, app, streamKey: match[4] ?? '', tcUrl: `rtmp://${match[1]}:${port}/${app}` };
}

export class RtmpClient extends EventEmitter<RtmpClientEvents> {
  readonly socket: Socket;
  readonly app: string;
  readonly streamKey: string;
  /** The message stream id from createStream, once publishing or playing. */
  streamId = 0;
  private readonly chunkSize: number;
  private readonly timeoutMs: number;
  private readonly handshake: ClientHandshake;
  private readonly connection: RtmpConnection;
  private handshaken: () => void = () => undefined;
  private readonly calls = new RtmpCalls((info) => (info ? statusError(info) : new RtmpStatusError('_error', '_error without info')));
  private publishing = false;
  private closed = false;
  private constructor(socket: Socket, url: ParsedUrl, options: RtmpClientOptions) {
    super();
    this.socket = socket;
    this.app = url.app;
    this.streamKey = url.streamKey;
    this.chunkSize = options.chunkSize ?? 65536;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.handshake = new ClientHandshake(options.handshake ?? 'digest', (bytes) => this.connection.send(bytes));
    this.connection = new RtmpConnection(socket, {
      io: options.io ?? processIo,
      handshake: this.handshake,
      events: {
        handshakeDone: () => this.handshaken(),
        message: (typeId, _streamId, timestamp, body) => this.onMessage(typeId, timestamp, body),
      },
    });
  }

  /** Connects, handshakes and sends connect; resolves once the server accepted it. */
  static async connect(url: string, options: RtmpClientOptions = {}): Promise<RtmpClient> {
    const parsed = parseRtmpUrl(url);
    const socket = netConnect({ host: parsed.host, port: parsed.port, noDelay: true, localAddress: options.localAddress });
    const client = new RtmpClient(socket, parsed, options);
    try {
      await client.open(parsed, options);
    } catch (err) {
      client.destroy(err as Error);
      throw err;
    }
    return client;
  }

  private async open(url: ParsedUrl, options: RtmpClientOptions): Promise<void> {
    const handshaken = new Promise<void>((resolve, reject) => {
      this.handshaken = resolve;
      this.socket.once('connect', () => this.handshake.start());
      this.socket.on('data', (data: Buffer) => {
        try {
          if (!this.closed) this.connection.receive(data);
        } catch (err) {
          reject(err as Error);
          this.destroy(err as Error);
        }
      });
      this.socket.once('error', reject); // ECONNREFUSED and the like, with their own message
      this.socket.once('close', () => reject(new Error('connection closed during connect')));
    });
    this.socket.on('error', (err) => this.destroy(err));
    this.socket.on('close', () => this.destroy(undefined));
    await this.withTimeout(handshaken, 'handshake');
    this.connection.setChunkSize(this.chunkSize);
    const props: Record<string, AmfEncodable> = {
      app: this.app,
      type: 'nonprivate',
      flashVer: 'FMLE/3.0 (compatible; flux-rtmpd)',
      ...(options.tcUrl === null ? {} : { tcUrl: options.tcUrl ?? url.tcUrl }),
      ...options.connectProperties,
    };
    await this.withTimeout(this.call('connect', props), 'connect');
  }

  /** releaseStream, FCPublish, createStream, publish; resolves on NetStream.Publish.Start. */
  async publish(): Promise<void> {
    const key = this.streamKey;
    this.callNoWait('releaseStream', null, key);
    this.callNoWait('FCPublish', null, key);
    await this.createStream();
    const status = this.calls.nextStatus();
    this.sendCommand(ChunkStreamId.streamCommand, this.streamId, command('publish', this.calls.transaction(), null, key, 'live'));
    const info = await this.withTimeout(status, 'publish');
    if (info.code !== 'NetStream.Publish.Start') throw statusError(info);
    this.publishing = true;
  }

  /** createStream, play; resolves on NetStream.Play.Start, rejects with the code otherwise. */
  async play(): Promise<void> {
    await this.createStream();
    const status = this.calls.nextStatus((info) => info.code !== 'NetStream.Play.Reset');
    this.sendCommand(ChunkStreamId.streamCommand, this.streamId, command('play', this.calls.transaction(), null, this.streamKey, -2));
    this.connection.send(setBufferLength(this.streamId, 3000));
    const info = await this.withTimeout(status, 'play');
    if (info.code !== 'NetStream.Play.Start') throw statusError(info);
  }

  /** Sends a command and waits for its _result (rejects on _error). */
  call(name: string, object: AmfEncodable, ...args: AmfEncodable[]): Promise<Command> {
    const { id, answer } = this.calls.call();
    this.sendCommand(ChunkStreamId.command, 0, command(name, id, object, ...args));
    return answer;
  }

  /** Returns false when the socket's buffer is full: wait for 'drain' on `socket`. */
  sendVideo(timestamp: number, body: Buffer): boolean {
    return this.sendMessage(ChunkStreamId.video, MessageType.video, timestamp, body);
  }

  sendAudio(timestamp: number, body: Buffer): boolean {
    return this.sendMessage(ChunkStreamId.audio, MessageType.audio, timestamp, body);
  }

  /** Sends `@setDataFrame onMetaData {values}`, as encoders do. */
  sendMetadata(values: Record<string, AmfEncodable>, timestamp = 0): boolean {
    const body = encodeAmf0('@setDataFrame', 'onMetaData', new EcmaArray(values as AmfObject));
    return this.sendMessage(ChunkStreamId.data, MessageType.dataAmf0, timestamp, body);
  }

  /** Sends any message on this client's stream (a raw data message, an aggregate, ...). */
  sendMessage(csid: number, typeId: number, timestamp: number, body: Buffer): boolean {
    if (this.closed) return false;
    this.connection.sendMessage(csid, typeId, this.streamId, timestamp, body);
    return !this.connection.full;
  }

  /** Sends what was written in this tick now instead of at its end. */
  flush(): void {
    this.connection.flush();
  }

  /** Bytes written but not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.connection.pendingBytes;
  }

  /**
   * FCUnpublish and deleteStream, as an encoder stops; resolves on NetStream.Unpublish.Success.
   * The connection stays open for another publish.
   */
  async unpublish(): Promise<void> {
    const status = this.calls.nextStatus();
    this.sendUnpublish();
    const info = await this.withTimeout(status, 'unpublish');
    if (info.code !== 'NetStream.Unpublish.Success') throw statusError(info);
  }

  /** Unpublishes politely when publishing, then ends the connection. */
  close(): void {
    if (this.closed) return;
    if (this.publishing) this.sendUnpublish();
    this.connection.end();
  }

  /** Drops the connection at once. */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.destroy();
    const err = error ?? new Error('connection closed');
    // A publish or play waiting for its status hears the connection is gone.
    this.calls.end(
      err,
      Object.assign(Object.create(null) as StatusInfo, { level: 'error', code: 'NetConnection.Connect.Closed', description: err.message }),
    );
    this.emit('close', error);
  }

  private async createStream(): Promise<void> {
    const reply = await this.withTimeout(this.call('createStream', null), 'createStream');
    const id = reply.args[0];
    if (typeof id !== 'number') throw new Error('createStream answered without a stream id');
    this.streamId = id;
  }

  private sendUnpublish(): void {
    this.publishing = false;
    this.callNoWait('FCUnpublish', null, this.streamKey);
    this.sendCommand(ChunkStreamId.command, 0, command('deleteStream', this.calls.transaction(), null, this.streamId));
  }

  private callNoWait(name: string, object: AmfEncodable, ...args: AmfEncodable[]): void {
    this.sendCommand(ChunkStreamId.command, 0, command(name, this.calls.transaction(), object, ...args));
  }

  private sendCommand(csid: number, streamId: number, body: Buffer): void {
    this.connection.sendMessage(csid, MessageType.commandAmf0, streamId, 0, body);
  }

  private onMessage(typeId: number, timestamp: number, body: Buffer): void {
    switch (typeId) {
      case MessageType.video:
        this.emit('media', 'video', timestamp, body);
        return;
      case MessageType.audio:
        this.emit('media', 'audio', timestamp, body);
        return;
      case MessageType.dataAmf0:
      case MessageType.dataAmf3:
        this.emit('media', 'data', timestamp, body);
        return;
      case MessageType.commandAmf0:
      case MessageType.commandAmf3:
        this.onCommand(parseCommand(typeId, body));
        return;
      default:
    }
  }

  private onCommand(cmd: Command): void {
    if (cmd.name === 'onStatus') this.emit('status', (cmd.args.find(isObject) ?? Object.create(null)) as StatusInfo);
    this.calls.received(cmd);
  }

  private withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    return withinTime(promise, what, this.timeoutMs);
  }
}

function statusError(info: StatusInfo): RtmpStatusError {
  const code = typeof info.code === 'string' ? info.code : 'unknown';
  const description = typeof info.description === 'string' ? info.description : '';
  return new RtmpStatusError(code, `${code}${description ? `: ${description}` : ''}`, info);
}
