// The floor in Node: a transparent TCP relay on 127.0.0.1 that moves every
// read to the other side with no RTMP work, so its CPU is what Node's I/O
// costs per read and write on the bench's own segments. Two read/write paths:
// - net: a net.Socket's 'data' event (a buffer per read) and socket.write;
// - rtmpd: rtmpd's own I/O (rtmpd/src/rtmp/io): reads into one buffer shared
//   by every connection, copied once into a reused output buffer (as rtmpd
//   copies into a player's batch) and written straight to the socket's handle;
//   through socket.write, with a copy of its own, while earlier bytes wait.
// Both set TCP_NODELAY, as rtmpd does, and stop reading a side while the
// other side's writes wait.
//
// Run: node hack/bench/floor/proxy.ts <net|rtmpd> <listen-port> <target-port>
// (make bench BENCH_ARGS="--proxy 'node hack/bench/floor/proxy.ts rtmpd'" appends the ports;
// see docs/performance.md, "The floor: Node's I/O with no RTMP work").
import { createServer, connect, type Socket } from 'node:net';
import { HandleWriter, type QueuedWriteOwner } from '../../../rtmpd/src/rtmp/io/handle-write.ts';
import { withSharedReadBuffer } from '../../../rtmpd/src/rtmp/io/shared-read.ts';

const [path, listenPort, targetPort] = process.argv.slice(2);
if (!listenPort || !targetPort || (path !== 'net' && path !== 'rtmpd')) {
  process.stderr.write('usage: node hack/bench/floor/proxy.ts <net|rtmpd> <listen-port> <target-port>\n');
  process.exit(2);
}
const target = { host: '127.0.0.1', port: Number(targetPort), noDelay: true };
const READ_BUFFER_BYTES = 64 * 1024;

/** Both directions of one connection: what reads from `from` is written to `to`. */
function pipeNet(from: Socket, to: Socket): void {
  from.on('data', (bytes: Buffer) => {
    if (!to.write(bytes)) from.pause();
  });
  to.on('drain', () => from.resume());
}

const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
const handleWriter = new HandleWriter();

/** Writes reads of the shared buffer to one socket as rtmpd's flush does, pausing the side they come from while bytes wait. */
class HandleSink implements QueuedWriteOwner {
  private readonly socket: Socket;
  private output = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private queued = false;
  /** The socket whose reads come here, paused while bytes wait. */
  source: Socket | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('drain', () => this.source?.resume());
  }

  write(read: Uint8Array): void {
    if (!this.queued && this.socket.writableLength === 0) {
      this.output.set(read);
      const how = handleWriter.write(this.socket, this.output.subarray(0, read.length), this);
      if (how === 'taken' || how === 'failed') return;
      if (how === 'queued') {
        this.output = Buffer.allocUnsafe(READ_BUFFER_BYTES); // libuv holds the old one until the write is done
        this.queued = true;
        this.source?.pause();
        return;
      }
    }
    if (!this.socket.write(Buffer.from(read))) this.source?.pause();
  }

  queuedWriteDone(error: Error | undefined): void {
    this.queued = false;
    if (error) this.socket.destroy(error);
    else if (this.socket.writableLength === 0) this.source?.resume();
  }
}

function relayRtmpdIo(accepted: Socket): Socket[] {
  const { socket: client, onRead } = withSharedReadBuffer(accepted, sharedReadBuffer);
  const toClient = new HandleSink(client);
  const upstream = connect({
    ...target,
    onread: {
      buffer: sharedReadBuffer,
      callback: (length: number, bytes: Uint8Array) => {
        toClient.write(bytes.subarray(0, length));
        return true;
      },
    },
  });
  const toUpstream = new HandleSink(upstream);
  toClient.source = upstream;
  toUpstream.source = client;
  onRead((bytes) => toUpstream.write(bytes));
  return [client, upstream];
}

const server = createServer({ noDelay: true, pauseOnConnect: path === 'rtmpd' }, (accepted) => {
  let pair: Socket[];
  if (path === 'rtmpd') {
    pair = relayRtmpdIo(accepted);
  } else {
    const upstream = connect(target);
    pipeNet(accepted, upstream);
    pipeNet(upstream, accepted);
    pair = [accepted, upstream];
  }
  for (const socket of pair) {
    socket.setNoDelay(true);
    socket.on('error', () => pair.forEach((s) => s.destroy()));
    socket.on('close', () => pair.forEach((s) => s.destroy()));
  }
});
server.listen(Number(listenPort), '127.0.0.1');
