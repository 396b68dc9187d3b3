// The command side of an RTMP client that publishes, without sockets: what
// OBS and FFmpeg send (connect, releaseStream, FCPublish, createStream,
// publish), the replies it waits for, then media on the stream it was given.
// The connection (rtmp/io/connection.ts) does the handshake, chunking,
// acknowledgements and pings; the owner (forward/forwarder.ts) the socket,
// the timeouts and the retries.
import type { MediaKind } from '../../flv/media-kind.ts';
import type { AmfValue } from '../wire/amf-values.ts';
import { encodeAmf0 } from '../wire/amf0.ts';
import { command, isObject, parseCommand, type Command } from '../wire/commands.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';
import type { Destination } from './destination.ts';

/** Where a publishing client is once its handshake has begun; `sending` is the only step media is sent in. */
export type PublishStep = 'handshaking' | 'connect' | 'createStream' | 'publish' | 'sending' | 'unpublished';

/** What the client writes through: its connection. */
export interface PublishOutput {
  sendMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer): void;
  setChunkSize(size: number): void;
}

/** The destination answered a command with an error (a refused connect or publish: a bad key, a name in use). */
export class PublishRefused extends Error {
  override name = 'PublishRefused';
  /** The status code the destination gave, e.g. NetStream.Publish.BadName; `_error` when it gave none. */
  readonly code: string;
  constructor(code: string, description: string) {
    super(description === '' ? code : `${code}: ${description}`);
    this.code = code;
  }
}

/** The chunk size the client sends with: OBS's, which every ingest takes. */
export const CLIENT_CHUNK_SIZE = 4096;

/** Transaction ids of the commands sent, in order, as FFmpeg numbers them. */
const Transaction = { connect: 1, releaseStream: 2, FCPublish: 3, createStream: 4, publish: 5, FCUnpublish: 6, deleteStream: 7 } as const;

const csidOf = (kind: MediaKind): number =>
  kind === 'video' ? ChunkStreamId.video : kind === 'audio' ? ChunkStreamId.audio : ChunkStreamId.data;
const typeOf = (kind: MediaKind): number =>
  kind === 'video' ? MessageType.video : kind === 'audio' ? MessageType.audio : MessageType.dataAmf0;

/** Prefixed to a stream's onMetaData so the destination keeps it for its players, as encoders send it. */
const SET_DATA_FRAME = encodeAmf0('@setDataFrame');

export class RtmpPublishClient {
  step: PublishStep = 'handshaking';
  /** The message stream createStream gave; media goes on it. */
  private streamId = 0;
  private readonly destination: Destination;
  private readonly out: PublishOutput;
  private readonly onStep: (step: PublishStep) => void;

  constructor(destination: Destination, out: PublishOutput, onStep: (step: PublishStep) => void) {
    this.destination = destination;
    this.out = out;
    this.onStep = onStep;
  }

  /** The handshake is done: announces the chunk size and connects to the app. */
  handshakeDone(): void {
    this.out.setChunkSize(CLIENT_CHUNK_SIZE);
    const { app, tcUrl } = this.destination;
    this.command(0, 'connect', Transaction.connect, { app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; flux-rtmpd)', tcUrl });
    this.enter('connect');
  }

  /** A message from the destination (protocol control is the connection's). Throws PublishRefused, or RtmpProtocolError for a malformed command. */
  message(typeId: number, body: Buffer): void {
    // Data and media a destination might send have nothing to tell a publisher.
    if (typeId !== MessageType.commandAmf0 && typeId !== MessageType.commandAmf3) return;
    const cmd = parseCommand(typeId, body);
    if (cmd.name === '_result') this.onResult(cmd);
    else if (cmd.name === '_error') this.onError(cmd);
    else if (cmd.name === 'onStatus') this.onStatus(cmd.args[0]);
    // onBWDone, onFCPublish, |RtmpSampleAccess and the like need no answer.
  }

  /** Sends one of the stream's packets (metadata as @setDataFrame, so the destination keeps it). */
  sendMedia(kind: MediaKind, timestamp: number, body: Buffer): void {
    if (this.step !== 'sending') return;
    const message = kind === 'data' ? Buffer.concat([SET_DATA_FRAME, body]) : body;
    this.out.sendMessage(csidOf(kind), typeOf(kind), this.streamId, timestamp, message);
  }

  /** Ends the publish as encoders do: FCUnpublish and deleteStream; the owner closes the connection after them. */
  unpublish(): void {
    if (this.step === 'sending') {
      this.command(0, 'FCUnpublish', Transaction.FCUnpublish, null, this.destination.streamName);
      this.command(0, 'deleteStream', Transaction.deleteStream, null, this.streamId);
    }
    this.enter('unpublished');
  }

  private onResult(cmd: Command): void {
    if (cmd.transactionId === Transaction.connect && this.step === 'connect') {
      const name = this.destination.streamName;
      this.command(0, 'releaseStream', Transaction.releaseStream, null, name);
      this.command(0, 'FCPublish', Transaction.FCPublish, null, name);
      this.command(0, 'createStream', Transaction.createStream, null);
      this.enter('createStream');
    } else if (cmd.transactionId === Transaction.createStream && this.step === 'createStream') {
      const id = cmd.args[0];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff)
        throw new PublishRefused('_result', 'createStream answered without a stream id');
      this.streamId = id;
      this.command(id, 'publish', Transaction.publish, null, this.destination.streamName, 'live');
      this.enter('publish');
    }
  }

  private onError(cmd: Command): void {
    // Some servers know neither releaseStream nor FCPublish; the publish that follows decides.
    if (cmd.transactionId === Transaction.releaseStream || cmd.transactionId === Transaction.FCPublish) return;
    throw this.refusal(cmd.args[0], '_error');
  }

  private onStatus(info: AmfValue): void {
    const code = isObject(info) && typeof info['code'] === 'string' ? info['code'] : '';
    if (code === 'NetStream.Publish.Start' && this.step === 'publish') return this.enter('sending');
    if (isObject(info) && info['level'] === 'error') throw this.refusal(info, code);
  }

  private command(
    streamId: number,
    name: string,
    transactionId: number,
    object: null | Record<string, string>,
    ...args: (string | number)[]
  ): void {
    const csid = streamId === 0 ? ChunkStreamId.command : ChunkStreamId.streamCommand;
    this.out.sendMessage(csid, MessageType.commandAmf0, streamId, 0, command(name, transactionId, object, ...args));
  }

  private enter(step: PublishStep): void {
    this.step = step;
    this.onStep(step);
  }

  /**
   * The refusal an error reply or status carries: its code and description,
   * bounded, and without the stream key a destination may quote (they end up
   * in logs and the API).
   */
  private refusal(info: AmfValue, fallback: string): PublishRefused {
    const secret = this.destination.streamName;
    const field = (name: string) =>
      isObject(info) && typeof info[name] === 'string' ? (info[name] as string).replaceAll(secret, '***').slice(0, 200) : '';
    return new PublishRefused(field('code') || fallback, field('description'));
  }
}
