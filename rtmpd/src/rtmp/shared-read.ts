// Reads of every accepted connection land in one buffer and go straight to
// the connection's parser. A plain net.Socket allocates a 64 KiB buffer for
// each read, shrinks it to the bytes read, wraps it in a Buffer and pushes
// it through a Readable stream to a 'data' event: at a read per frame per
// publisher that was a tenth of rtmpd's CPU, and its garbage drove most
// major GCs. Node offers a static read buffer (the `onread` option) only to
// sockets it constructs, so an accepted socket's handle is moved into such
// a socket; where that is not possible the accepted socket is kept and read
// the ordinary way.
import { Socket } from 'node:net';

/** Takes the bytes of one read; they are valid only during the call. */
export type ReadHandler = (bytes: Buffer) => void;

const READ_BUFFER_BYTES = 64 * 1024;
/** Shared: a read's bytes are consumed (copied into messages) before the next read runs. */
const readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

export interface SharedReadSocket {
  socket: Socket;
  /** Sets where reads go; bytes read before it is set are dropped, so set it at once. */
  onRead(handler: ReadHandler): void;
}

interface HandleCarrier {
  _handle?: unknown;
}

/** `accepted` must come from a server created with pauseOnConnect, so that nothing was read yet. */
export function withSharedReadBuffer(accepted: Socket): SharedReadSocket {
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
      buffer: readBuffer,
      callback: (length: number, buffer: Uint8Array) => {
        handler((buffer as Buffer).subarray(0, length));
        return true; // false would pause reading
      },
    },
  });
  return { socket, onRead: (h) => void (handler = h) };
}
