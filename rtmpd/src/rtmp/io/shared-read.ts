// Reads of accepted connections land in one buffer and go straight to the
// connection's parser. A plain net.Socket allocates a buffer per read and
// pushes it through a Readable stream to a 'data' event: garbage at a read per
// frame per publisher, which drives V8's major GCs. Node offers a static read
// buffer (the `onread` option) only to sockets it constructs, so an accepted
// socket's handle is moved into such a socket; where that is not possible the
// accepted socket is kept and read the ordinary way.
import { Socket } from 'node:net';

/** Takes the bytes of one read; they are valid only during the call. */
type ReadHandler = (bytes: Buffer) => void;

export interface SharedReadSocket {
  socket: Socket;
  /** Sets where reads go; bytes read before it is set are dropped, so set it at once. */
  onRead(handler: ReadHandler): void;
}

interface HandleCarrier {
  _handle?: unknown;
}

/**
 * `accepted` must come from a server created with pauseOnConnect, so that
 * nothing was read yet. `buffer` may be shared by every connection: a read's
 * bytes are consumed (parsed or copied) before the next read runs.
 */
export function withSharedReadBuffer(accepted: Socket, buffer: Buffer): SharedReadSocket {
  const handle = (accepted as unknown as HandleCarrier)._handle;
  let handler: ReadHandler = () => undefined;
  if (handle === undefined || handle === null) {
    accepted.on('data', (bytes: Buffer) => handler(bytes));
    accepted.resume();
    return { socket: accepted, onRead: (h) => void (handler = h) };
  }
  // The accepted socket lets go of the handle and closes without touching it.
  (accepted as unknown as HandleCarrier)._handle = null;
  accepted.destroy();
  const socket = new Socket({
    handle: handle as never,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (length: number, bytes: Uint8Array) => {
        handler((bytes as Buffer).subarray(0, length));
        return true; // false would pause reading
      },
    },
  });
  return { socket, onRead: (h) => void (handler = h) };
}
