// Hands a flush straight to the socket's libuv handle, as net.Socket's write
// does underneath (Node's internal stream_base_commons.writeGeneric), without
// the Writable state machine around it: write() → writeOrBuffer → _write →
// _writeGeneric → a WriteWrap object made per call. That machinery costs more
// user time per write than the write system call's own user-space part, and
// a media server writes tens of thousands of times a second. Only a write
// that the kernel takes whole is this cheap; the caller uses socket.write
// whenever bytes are queued, so the Writable keeps ordering and memory as usual.
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** A libuv write request (node's WriteWrap); `oncomplete` is called when a write that had to wait is done. */
interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number) => void;
  /** Keeps the bytes alive while libuv holds a pointer to them. */
  bytes: Uint8Array | undefined;
  owner: QueuedWriteOwner | undefined;
}

/** Told when a write that had to wait is done (`error` when it failed). */
export interface QueuedWriteOwner {
  queuedWriteDone(error: Error | undefined): void;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
  /** The handle class of plain TCP sockets; others (a TLS socket's) write differently, so they take socket.write. */
  TCP: abstract new () => StreamHandle;
}

interface StreamHandle {
  writeBuffer(request: WriteRequest, bytes: Uint8Array): number;
}

/** The bindings net.Socket writes through; undefined where this Node does not offer them (every write then takes socket.write). */
function streamWrap(): StreamWrapBinding | undefined {
  try {
    const legacy = process as unknown as { binding(name: string): Partial<StreamWrapBinding> };
    const { WriteWrap, streamBaseState, kLastWriteWasAsync } = legacy.binding('stream_wrap');
    const { TCP } = legacy.binding('tcp_wrap');
    if (typeof WriteWrap !== 'function' || typeof TCP !== 'function') return undefined;
    if (streamBaseState === undefined || typeof kLastWriteWasAsync !== 'number') return undefined;
    return { WriteWrap, streamBaseState, kLastWriteWasAsync, TCP };
  } catch {
    return undefined;
  }
}

const binding = streamWrap();

function writeError(status: number): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`write ${code}`), { code, errno: status, syscall: 'write' });
}

function onWriteComplete(this: WriteRequest, status: number): void {
  const owner = this.owner!;
  this.bytes = undefined;
  this.owner = undefined;
  owner.queuedWriteDone(status < 0 ? writeError(status) : undefined);
}

/**
 * What `HandleWriter.write` did with the bytes:
 * - `unavailable`: nothing (not a plain TCP socket's handle, still connecting, or no binding): use socket.write;
 * - `taken`: the kernel took them all; nothing refers to them any more;
 * - `queued`: libuv holds them until the socket can take them, and tells the owner then;
 * - `failed`: the write failed, and the socket has been destroyed with the error.
 */
export type HandleWrite = 'unavailable' | 'taken' | 'queued' | 'failed';

/**
 * Writes to sockets' handles with one reusable request: a write the kernel
 * takes at once never touches it, so only a write that has to wait gets a
 * request of its own. One per WriteTick, shared by its connections.
 */
export class HandleWriter {
  private request: WriteRequest | undefined = binding ? new binding.WriteWrap() : undefined;

  /**
   * Writes `bytes` to the socket's handle. Call it only when the socket has
   * nothing queued (writableLength 0 and no earlier `queued` write pending),
   * or the bytes would overtake the queue in the Writable's buffer.
   */
  write(socket: Socket, bytes: Uint8Array, owner: QueuedWriteOwner): HandleWrite {
    const request = this.request;
    const handle = (socket as unknown as { _handle: unknown })._handle;
    if (request === undefined || !(handle instanceof binding!.TCP) || socket.connecting) return 'unavailable';
    const status = handle.writeBuffer(request, bytes);
    if (status !== 0) {
      socket.destroy(writeError(status));
      return 'failed';
    }
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) return 'taken';
    request.bytes = bytes;
    request.owner = owner;
    request.oncomplete = onWriteComplete;
    this.request = new binding!.WriteWrap();
    return 'queued';
  }
}
