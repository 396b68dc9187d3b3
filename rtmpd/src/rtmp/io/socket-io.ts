import type { Socket } from 'node:net';
import { BufferPool } from '../../memory/buffer-pool.ts';
import { withSharedReadBuffer } from './shared-read.ts';
import { TickWriter, WriteTick } from './tick-writer.ts';

const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Spare buffers for messages assembled from several chunks or reads, up to
 * 4 MiB: one is out per message being assembled and comes back as soon as
 * the message is handled, so a few per chunk stream in flight suffice.
 */
const MAX_SPARE_BODY_BYTES = 4 * 1024 * 1024;

/** Takes the bytes of one socket read; they are valid only during the call. */
export interface ReadReceiver {
  receive(bytes: Buffer): void;
}

/**
 * The memory and timing that a set of connections (a server's, or a load
 * generator's clients) share: one read buffer, the spare buffers that lent
 * message bodies are assembled in, the spare write batches and the
 * end-of-tick flush. Made by whoever owns the connections and handed to
 * each, so two servers in one process share nothing.
 */
export class SocketIo {
  /** Where the chunk readers of connections that lend bodies assemble them. */
  readonly bodies = new BufferPool(MAX_SPARE_BODY_BYTES);
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  private readonly tick: WriteTick;

  /**
   * `mediaWriteIntervalMs`: how long shared media (a stream's fan-out to
   * players) may wait to leave with more, `mergeMinWriters`: for media that
   * at least that many connections send (WriteTick).
   */
  constructor(mediaWriteIntervalMs = 0, mergeMinWriters = 1) {
    this.tick = new WriteTick(mediaWriteIntervalMs, mergeMinWriters);
  }

  /**
   * Takes over a socket accepted with pauseOnConnect: its reads land in the
   * shared buffer and go to the receiver that `attach` names, and what the
   * receiver writes while handling a read leaves when the read is done.
   */
  adopt(accepted: Socket): { socket: Socket; attach(receiver: ReadReceiver): void } {
    const { socket, onRead } = withSharedReadBuffer(accepted, this.readBuffer);
    return { socket, attach: (receiver) => onRead((bytes) => this.tick.handleRead(receiver, bytes)) };
  }

  /** A writer whose writes of one tick leave the socket in one write. */
  writer(socket: Socket): TickWriter {
    return new TickWriter(socket, this.tick);
  }

  /** Runs `receiver` on bytes read some other way (a client's 'data' event) and flushes what it wrote. */
  handleRead(receiver: ReadReceiver, bytes: Buffer): void {
    this.tick.handleRead(receiver, bytes);
  }
}
