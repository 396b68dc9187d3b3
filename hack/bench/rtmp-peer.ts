// The bench's RTMP clients, built to send and read the way real ones do
// rather than the way that is cheapest to generate, because a server's cost
// depends on it:
// - a publisher announces its outbound chunk size before connect (OBS: 4096,
//   librtmp-based encoders and cameras: the protocol's 128) or adopts the one
//   the server announces (FFmpeg echoes it back);
// - it writes every media message as it is produced, with its own socket
//   write (or one write per chunk, as librtmp's RTMP_SendPacket does), and
//   after the first message of a chunk stream with the 7-byte fmt 1 header
//   (timestamp delta) that librtmp and FFmpeg use;
// - Nagle's algorithm stays as the encoder leaves it: on for OBS and FFmpeg,
//   off for plain librtmp, which sets TCP_NODELAY;
// - a player acknowledges as librtmp does, every tenth of the server's Set
//   Peer Bandwidth, answers pings and announces a buffer length.
import { connect, type Socket } from 'node:net';
import type { AmfEncodable } from '../../rtmpd/src/rtmp/wire/amf0.ts';
import { ChunkReader } from '../../rtmpd/src/rtmp/wire/chunk-reader.ts';
import { chunkedLength, writeChunks } from '../../rtmpd/src/rtmp/wire/chunk-writer.ts';
import { command, parseCommand, type Command } from '../../rtmpd/src/rtmp/wire/commands.ts';
import {
  acknowledgement,
  parseUserControl,
  pingResponse,
  readControlValue,
  setBufferLength,
  setChunkSize,
  UserControlEvent,
} from '../../rtmpd/src/rtmp/wire/control.ts';
import { ClientHandshake } from '../../rtmpd/src/rtmp/wire/handshake.ts';
import { ChunkStreamId, DEFAULT_CHUNK_SIZE, MessageType } from '../../rtmpd/src/rtmp/wire/message-types.ts';
import { RtmpCalls, withinTime } from '../../rtmpd/test/support/rtmp-calls.ts';

export interface PublisherStyle {
  /** Outbound chunk size, or 'server' to adopt the server's as FFmpeg does. */
  chunkSize: number | 'server';
  /** Nagle's algorithm: on as OBS and FFmpeg leave it, off as librtmp sets it. */
  nagle: boolean;
  /** One socket write per message, or per chunk as librtmp does. */
  writes: 'message' | 'chunk';
}

/** OBS's RTMP output: 4096-byte chunks, Nagle on, each packet written as it is produced. */
export const OBS_STYLE: PublisherStyle = { chunkSize: 4096, nagle: true, writes: 'message' };

export type MediaHandler = (typeId: number, timestamp: number, body: Buffer) => void;

/** What a connection is waiting for; `live` once it publishes or plays. */
type PeerStep = 'handshake' | 'connect' | 'createStream' | 'publish' | 'play' | 'live';

/**
 * Why a connection failed or ended early, in a few words the bench counts
 * by: the step it was in and what happened (`connect: reset by the server`,
 * `handshake: no answer within 10 s`, `play: NetStream.Play.StreamNotFound`),
 * so a failure in a run is never a mystery.
 */
export function failureReason(step: PeerStep, err: Error | undefined): string {
  const message = err?.message ?? '';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let what: string;
  if (code === 'EPIPE' || code === 'ECONNRESET') what = 'reset by the server';
  else if (code === 'ECONNREFUSED') what = 'refused at TCP connect';
  else if (err === undefined || /connection closed/.test(message)) what = 'closed by the server';
  else {
    const timeout = / timed out after (\d+) ms/.exec(message);
    const status = /(?:refused|_error): (\S+)/.exec(message);
    what = timeout ? `no answer within ${Number(timeout[1]) / 1000} s` : status ? status[1]! : message;
  }
  return `${step}: ${what}`;
}

/** Connecting, publishing or playing failed: `reason` says in which step and why (failureReason). */
export class PeerFailure extends Error {
  readonly reason: string;
  constructor(step: PeerStep, cause: Error) {
    super(cause.message, { cause });
    this.reason = failureReason(step, cause);
  }
}

/** librtmp's Set Peer Bandwidth until the server sends its own. */
const LIBRTMP_DEFAULT_PEER_BANDWIDTH = 2_500_000;
/** Highest timestamp or delta that fits the 3-byte field. */
const MAX_SHORT_TIMESTAMP = 0xfffffe;

/**
 * Reads of every bench connection land here and are parsed before the next
 * read: the generator runs hundreds of connections and should cost the
 * machine as little as it can, since it shares the cores with the server.
 */
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** Per chunk stream: what the last message sent on it said, for fmt 1 headers. */
interface SentHeader {
  timestamp: number;
}

export class RtmpPeer {
  readonly socket: Socket;
  readonly app: string;
  readonly streamKey: string;
  /** Called once when the connection ends, with the error if it failed. */
  onClose: (error: Error | undefined) => void = () => {};
  /** What the connection waits for now (the step a failure happened in). */
  step: PeerStep = 'handshake';
  private readonly timeoutMs: number;
  private readonly reader: ChunkReader;
  private handshake: ClientHandshake | undefined;
  private handshakeDone: () => void = () => {};
  private outChunkSize = DEFAULT_CHUNK_SIZE;
  private adoptServerChunkSize = false;
  private writes: PublisherStyle['writes'] = 'message';
  private streamId = 0;
  private publishing = false;
  private readonly calls = new RtmpCalls((info) => new Error(`_error: ${String(info?.code ?? 'without info')}`));
  private onMedia: MediaHandler | undefined;
  private readonly sent = new Map<number, SentHeader>();
  private bytesIn = 0;
  private bytesInAcked = 0;
  private peerBandwidth = LIBRTMP_DEFAULT_PEER_BANDWIDTH;
  private closed = false;

  /** Players (no style) set TCP_NODELAY as librtmp does. */
  private constructor(host: string, port: number, app: string, streamKey: string, style: PublisherStyle | undefined, timeoutMs: number) {
    this.app = app;
    this.streamKey = streamKey;
    this.timeoutMs = timeoutMs;
    this.reader = new ChunkReader((typeId, _streamId, timestamp, body) => this.onMessage(typeId, timestamp, body), {
      borrowBodies: true,
    });
    this.socket = connect({
      host,
      port,
      noDelay: !(style?.nagle ?? false),
      onread: { buffer: readBuffer, callback: (length) => (this.onRead(readBuffer.subarray(0, length)), true) },
    });
  }

  /**
   * Connects to rtmp://host:port/app/key, handshakes and sends connect
   * (after Set Chunk Size when publishing with a chunk size of its own).
   */
  static async connect(url: string, style: PublisherStyle | undefined, timeoutMs = 10_000): Promise<RtmpPeer> {
    const m = /^rtmp:\/\/([^/:]+):(\d+)\/([^/]+)\/(.*)$/.exec(url);
    if (!m) throw new Error(`not an rtmp://host:port/app/key URL: ${url}`);
    const [, host, port, app, key] = m as unknown as [string, string, string, string, string];
    const peer = new RtmpPeer(host, Number(port), app, key, style, timeoutMs);
    try {
      await peer.failing(() => peer.open(`rtmp://${host}:${port}/${app}`, style));
    } catch (err) {
      peer.destroy((err as Error).cause as Error);
      throw err;
    }
    return peer;
  }

  /** Runs a step's work; what it throws becomes a PeerFailure naming the step. */
  private async failing<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new PeerFailure(this.step, err as Error);
    }
  }

  private async open(tcUrl: string, style: PublisherStyle | undefined): Promise<void> {
    const handshaken = new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => {
        this.handshake = new ClientHandshake('digest', (bytes) => this.socket.write(bytes));
        this.handshake.start();
      });
      this.handshakeDone = resolve;
      this.socket.once('error', reject);
      this.socket.once('close', () => reject(new Error('connection closed during connect')));
    });
    this.socket.on('error', (err) => this.destroy(err));
    this.socket.on('close', () => this.destroy(undefined));
    await this.withTimeout(handshaken, 'handshake');
    if (style) {
      this.writes = style.writes;
      if (style.chunkSize === 'server') this.adoptServerChunkSize = true;
      else if (style.chunkSize !== DEFAULT_CHUNK_SIZE) {
        this.socket.write(setChunkSize(style.chunkSize));
        this.outChunkSize = style.chunkSize;
      }
    }
    const props: Record<string, AmfEncodable> = style
      ? { app: this.app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)', swfUrl: tcUrl, tcUrl }
      : { app: this.app, flashVer: 'LNX 10,0,32,18', tcUrl, fpad: false, capabilities: 15, audioCodecs: 3191, videoCodecs: 252 };
    await this.withTimeout(this.call('connect', props), 'connect');
  }

  /** releaseStream, FCPublish, createStream, publish: resolves on NetStream.Publish.Start. */
  publish(): Promise<void> {
    return this.failing(async () => {
      this.sendCommand(0, 'releaseStream', this.calls.transaction(), null, this.streamKey);
      this.sendCommand(0, 'FCPublish', this.calls.transaction(), null, this.streamKey);
      await this.createStream();
      const status = this.calls.nextStatus();
      this.sendCommand(this.streamId, 'publish', this.calls.transaction(), null, this.streamKey, 'live');
      const info = await this.withTimeout(status, 'publish');
      if (info.code !== 'NetStream.Publish.Start') throw new Error(`publish refused: ${String(info.code)}`);
      this.publishing = true;
      this.step = 'live';
    });
  }

  /** createStream, play, Set Buffer Length: resolves on NetStream.Play.Start. */
  play(onMedia: MediaHandler): Promise<void> {
    return this.failing(async () => {
      await this.createStream();
      const status = this.calls.nextStatus((info) => info.code !== 'NetStream.Play.Reset');
      this.sendCommand(this.streamId, 'play', this.calls.transaction(), null, this.streamKey, -1000); // librtmp's start for a live stream
      this.socket.write(setBufferLength(this.streamId, 3000));
      this.onMedia = onMedia;
      const info = await this.withTimeout(status, 'play');
      if (info.code !== 'NetStream.Play.Start') throw new Error(`play refused: ${String(info.code)}`);
      this.step = 'live';
    });
  }

  /** Sends one audio or video message now, as its chunks; `body` is copied, so the caller may reuse it once this returns. */
  sendMedia(typeId: number, timestamp: number, body: Buffer): void {
    if (this.closed) return;
    const csid = typeId === MessageType.video ? ChunkStreamId.video : ChunkStreamId.audio;
    this.writeMessage(csid, typeId, this.streamId, timestamp, body);
  }

  /** Bytes the socket holds that the kernel has not taken: the server is not reading fast enough. */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /** Unpublishes when publishing (as encoders do on stop), then ends the connection. */
  close(): void {
    if (this.closed) return;
    if (this.publishing) {
      this.sendCommand(0, 'FCUnpublish', this.calls.transaction(), null, this.streamKey);
      this.sendCommand(0, 'deleteStream', this.calls.transaction(), null, this.streamId);
    }
    this.closed = true;
    this.socket.end();
  }

  private destroy(error: Error | undefined): void {
    const wasOpen = !this.closed;
    this.closed = true;
    this.socket.destroy();
    this.calls.end(error ?? new Error('connection closed'));
    if (wasOpen) this.onClose(error);
  }

  private async createStream(): Promise<void> {
    const reply = await this.withTimeout(this.call('createStream', null), 'createStream');
    const id = reply.args[0];
    if (typeof id !== 'number') throw new Error('createStream answered without a stream id');
    this.streamId = id;
  }

  private call(name: string, object: AmfEncodable, ...args: AmfEncodable[]): Promise<Command> {
    const { id, answer } = this.calls.call();
    this.sendCommand(0, name, id, object, ...args);
    return answer;
  }

  private sendCommand(streamId: number, name: string, transaction: number, object: AmfEncodable, ...args: AmfEncodable[]): void {
    const csid = streamId === 0 ? ChunkStreamId.command : ChunkStreamId.streamCommand;
    this.writeMessage(csid, MessageType.commandAmf0, streamId, 0, command(name, transaction, object, ...args));
  }

  /**
   * The first message of a chunk stream (or one whose timestamp does not
   * fit a delta) gets a full fmt 0 header, later ones fmt 1 with the delta,
   * as librtmp and FFmpeg send them; then one write, or one per chunk.
   */
  private writeMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    const chunkSize = this.outChunkSize;
    const last = this.sent.get(csid);
    const delta = last ? timestamp - last.timestamp : -1;
    let out: Buffer;
    let headerLength: number;
    if (delta < 0 || delta > MAX_SHORT_TIMESTAMP || timestamp > MAX_SHORT_TIMESTAMP) {
      out = Buffer.allocUnsafe(chunkedLength(csid, timestamp, body.length, chunkSize));
      writeChunks(out, 0, csid, typeId, streamId, timestamp, body, chunkSize);
      headerLength = 12;
      this.sent.set(csid, { timestamp });
    } else {
      const chunks = Math.max(1, Math.ceil(body.length / chunkSize));
      out = Buffer.allocUnsafe(8 + (chunks - 1) + body.length);
      out[0] = (1 << 6) | csid;
      out.writeUIntBE(delta, 1, 3);
      out.writeUIntBE(body.length, 4, 3);
      out[7] = typeId;
      let pos = 8;
      for (let offset = 0; offset < body.length; offset += chunkSize) {
        if (offset > 0) out[pos++] = (3 << 6) | csid;
        pos += body.copy(out, pos, offset, Math.min(offset + chunkSize, body.length));
      }
      headerLength = 8;
      last!.timestamp = timestamp;
    }
    if (this.writes === 'message' || body.length <= chunkSize) {
      this.socket.write(out);
      return;
    }
    // librtmp sends each chunk with a send() of its own.
    let pos = 0;
    for (let offset = 0; offset < body.length; offset += chunkSize) {
      const size = (offset === 0 ? headerLength : 1) + Math.min(chunkSize, body.length - offset);
      this.socket.write(out.subarray(pos, pos + size));
      pos += size;
    }
  }

  private onRead(bytes: Buffer): void {
    if (this.closed) return;
    try {
      this.bytesIn += bytes.length;
      let rest: Buffer | undefined = bytes;
      if (this.handshake) {
        rest = this.handshake.push(bytes);
        if (rest === undefined) return;
        this.handshake = undefined;
        this.handshakeDone();
      }
      if (rest.length > 0) this.reader.push(rest);
      // librtmp's ReadN: acknowledge once more than a tenth of the peer bandwidth came in.
      if (this.bytesIn - this.bytesInAcked > this.peerBandwidth / 10) {
        this.bytesInAcked = this.bytesIn;
        this.socket.write(acknowledgement(this.bytesIn));
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  private onMessage(typeId: number, timestamp: number, body: Buffer): void {
    switch (typeId) {
      case MessageType.audio:
      case MessageType.video:
        this.onMedia?.(typeId, timestamp, body);
        return;
      case MessageType.setChunkSize:
        if (this.adoptServerChunkSize) {
          // FFmpeg sends the server's chunk size back and uses it from then on.
          this.outChunkSize = this.reader.chunkSize;
          this.socket.write(setChunkSize(this.outChunkSize));
        }
        return;
      case MessageType.setPeerBandwidth:
        this.peerBandwidth = readControlValue(body, 'set_peer_bandwidth');
        return;
      case MessageType.userControl: {
        const control = parseUserControl(body);
        if (control.event === UserControlEvent.pingRequest) this.socket.write(pingResponse(control.value));
        return;
      }
      case MessageType.commandAmf0:
      case MessageType.commandAmf3:
        this.calls.received(parseCommand(typeId, body));
        return;
      default:
    }
  }

  private withTimeout<T>(promise: Promise<T>, what: Exclude<PeerStep, 'live'>): Promise<T> {
    this.step = what;
    return withinTime(promise, what, this.timeoutMs);
  }
}
