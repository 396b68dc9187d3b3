import type { Socket } from 'node:net';
import { ChunkReader, type InboundLimits } from '../wire/chunk-reader.ts';
import { acknowledgement, parseUserControl, pingResponse, readControlValue, setChunkSize, UserControlEvent } from '../wire/control.ts';
import { DEFAULT_CHUNK_SIZE, MessageType } from '../wire/message-types.ts';
import type { SocketIo } from './socket-io.ts';
import type { SharedSource, TickWriter } from './tick-writer.ts';

/** The acknowledgement window both sides announce and, until the peer names its own, honour. */
export const WINDOW_ACK_SIZE = 2_500_000;
/** A tiny window would have us acknowledge every few bytes. */
const MIN_ACK_WINDOW = 4096;
/**
 * Bytes of replies and control messages (not media) a peer may leave unread
 * and still be read. One that sends pings or commands and never reads the
 * answers (18 bytes for a 7-byte ping chunk) would otherwise make them queue
 * without end; past this its reads stop until it has read what it was sent,
 * so it holds this plus the answers to one read (2.6 times the 64 KiB read,
 * for pings) at most. A player that keeps media queued sends a ping or an
 * acknowledgement now and then: it comes nowhere near.
 */
const MAX_UNREAD_REPLY_BYTES = 64 * 1024;

/** Either side's handshake: takes bytes until it is done, then returns those that follow it. */
export interface Handshake {
  push(data: Buffer): Buffer | undefined;
}

/** What a connection tells its owner (the server's session, the client). */
export interface ConnectionEvents {
  /** The handshake is done; messages follow. */
  handshakeDone(): void;
  /** A message that is not protocol control, which the connection handles itself. */
  message(typeId: number, streamId: number, timestamp: number, body: Buffer): void;
}

/** Traffic counted across connections (the server's metrics); plain numbers, bumped per read and write. */
export interface TrafficCounters {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

export interface RtmpConnectionOptions {
  io: SocketIo;
  handshake: Handshake;
  events: ConnectionEvents;
  /** Bodies are lent (views of the read buffer or of a pooled buffer), valid during `message` only (see ChunkReader's borrowBodies). */
  borrowBodies?: boolean;
  counters?: TrafficCounters;
  /** What the peer may make this side hold in messages still arriving; the reader's defaults when absent. */
  inbound?: InboundLimits;
}

/**
 * One RTMP connection's protocol chores, the same for a server and a client:
 * the handshake, then chunks in and out at the negotiated sizes, counting
 * bytes, acknowledging the peer's window and answering pings. Commands and
 * media go to the owner.
 */
export class RtmpConnection {
  readonly socket: Socket;
  /** Bytes read and written, handshake included. */
  bytesReceived = 0;
  bytesSent = 0;
  private handshake: Handshake | undefined;
  private readonly events: ConnectionEvents;
  private readonly reader: ChunkReader;
  private readonly writer: TickWriter;
  private readonly counters: TrafficCounters | undefined;
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private ackWindow = WINDOW_ACK_SIZE;
  private ackedAt = 0;
  private closed = false;
  /** Bytes of replies and control messages written since the peer last had nothing left unread. */
  private unreadReplyBytes = 0;
  /** Reads stopped: the peer left too many replies unread. */
  private readsHeld = false;

  constructor(socket: Socket, options: RtmpConnectionOptions) {
    this.socket = socket;
    this.handshake = options.handshake;
    this.events = options.events;
    this.counters = options.counters;
    this.writer = options.io.writer(socket);
    this.reader = new ChunkReader((typeId, streamId, timestamp, body) => this.onMessage(typeId, streamId, timestamp, body), {
      borrowBodies: options.borrowBodies ?? false,
      bodyPool: options.io.bodies,
      ...options.inbound,
    });
  }

  /** Changes what the peer may make this side hold, from its next message on. */
  setInboundLimits(limits: InboundLimits): void {
    this.reader.setLimits(limits);
  }

  /** When the oldest message still arriving began, to within the owner's sweep that calls this (ChunkReader.unfinishedSince). */
  unfinishedSince(now: number): number | undefined {
    return this.reader.unfinishedSince(now);
  }

  /** Bytes written but not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.writer.pendingBytes;
  }

  /** The socket's buffer is full: hold back until it drains. */
  get full(): boolean {
    return this.writer.full;
  }

  /** Takes the bytes of one socket read; throws RtmpProtocolError on anything malformed. */
  receive(data: Buffer): void {
    if (this.closed) return;
    this.bytesReceived += data.length;
    if (this.counters) this.counters.bytesIn += data.length;
    let rest: Buffer | undefined = data;
    if (this.handshake) {
      rest = this.handshake.push(data);
      if (rest === undefined) return;
      this.handshake = undefined;
      this.events.handshakeDone();
    }
    if (this.bytesReceived - this.ackedAt >= this.ackWindow) {
      this.ackedAt = this.bytesReceived;
      this.send(acknowledgement(this.bytesReceived));
    }
    if (rest.length > 0) this.reader.push(rest);
  }

  /** Writes bytes already in chunk form (handshake, control messages) in this tick's write. */
  send(bytes: Buffer): void {
    if (this.closed) return;
    this.holdReadsIfUnread(this.counted(this.writer.write(bytes)));
  }

  /** Writes one message as chunks of the negotiated size in this tick's write. */
  sendMessage(csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    if (this.closed) return;
    this.holdReadsIfUnread(this.counted(this.writer.writeMessage(csid, typeId, streamId, timestamp, body, this.chunkSize)));
  }

  /**
   * Reads again once a peer whose reads were held has read all it was sent.
   * Called by the owner's periodic sweep rather than on 'drain', which the
   * writer emits only for a queue the kernel did not take at once.
   */
  resumeReadsIfDrained(): void {
    if (!this.readsHeld || this.closed || this.writer.backlogBytes > 0) return;
    this.readsHeld = false;
    this.unreadReplyBytes = 0;
    this.socket.resume();
  }

  /**
   * After a reply or a control message (never shared media, the relay's
   * path) of `length` bytes: a peer that left too many of them unread is
   * read no more for now, so its requests cannot make their answers queue
   * without end. The read being handled is parsed to its end.
   */
  private holdReadsIfUnread(length: number): void {
    if (this.writer.backlogBytes === 0) {
      this.unreadReplyBytes = 0;
      return;
    }
    this.unreadReplyBytes += length;
    if (this.readsHeld || this.unreadReplyBytes < MAX_UNREAD_REPLY_BYTES) return;
    this.readsHeld = true;
    this.socket.pause();
  }

  /**
   * Writes a media message that other connections send too (`key`: the
   * packet; `source`: its stream's, from `sharedSource`), serialized once for
   * all of them.
   */
  sendShared(key: object, source: SharedSource, csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    if (this.closed) return;
    this.counted(this.writer.writeShared(key, source, csid, typeId, streamId, timestamp, body, this.chunkSize));
  }

  /** Where the shared messages of `stream` are serialized, the same for every connection that sends them in chunks of this size. */
  sharedSource(stream: object): SharedSource {
    return this.writer.sourceOf(stream, this.chunkSize);
  }

  /** Announces the chunk size this side sends from now on, and uses it. */
  setChunkSize(size: number): void {
    this.send(setChunkSize(size));
    this.chunkSize = size;
  }

  /** Sends what this tick wrote now rather than at its end. */
  flush(): void {
    this.writer.flush();
  }

  /** Ends the connection after what was written; later writes are dropped and reads ignored. */
  end(): void {
    this.reader.stop();
    this.writer.end();
  }

  /** Drops the connection at once; nothing more is parsed. */
  destroy(): void {
    this.closed = true;
    this.reader.stop();
    this.socket.destroy();
  }

  /** Counts a write of `length` bytes, and returns it. */
  private counted(length: number): number {
    if (length === 0) return 0; // dropped: the connection is ending
    this.bytesSent += length;
    if (this.counters) {
      this.counters.bytesOut += length;
      this.counters.messagesOut++;
    }
    return length;
  }

  private onMessage(typeId: number, streamId: number, timestamp: number, body: Buffer): void {
    if (this.counters) this.counters.messagesIn++;
    switch (typeId) {
      case MessageType.userControl: {
        const control = parseUserControl(body);
        if (control.event === UserControlEvent.pingRequest) this.send(pingResponse(control.value));
        // StreamBegin, SetBufferLength, PingResponse, ...: a live relay has nothing to adjust.
        return;
      }
      case MessageType.windowAckSize:
        this.ackWindow = Math.max(readControlValue(body, 'window_ack_size'), MIN_ACK_WINDOW);
        return;
      case MessageType.setChunkSize:
      case MessageType.abort:
      case MessageType.acknowledgement:
      case MessageType.setPeerBandwidth:
        return; // chunk size and abort were applied by the reader; the rest needs nothing
      default:
        this.events.message(typeId, streamId, timestamp, body);
    }
  }
}
