// A join storm's players, in a process of their own (forked by join-storm-players.ts)
// so that their parsing is not the server's or the prober's event loop: opens
// every HTTP-FLV connection at once over raw sockets, and times each from the
// storm's start to the end of its first coded video frame (the keyframe it
// starts on, after the decoder config). A player then goes on
// reading (and dropping) what it is sent, as a real one would, until the
// storm ends.
//   argv: <host> <port> <path> <players> <timeout ms>
import { connect, type Socket } from 'node:net';
import { FlvDemuxer, type FlvTagRecord } from '../../rtmpd/src/flv/demux.ts';
import type { StormResult } from './join-storm-players.ts';

const [host, port, path, players, timeoutMs] = process.argv.slice(2) as [string, string, string, string, string];

/** The FLV video tag's frame type of a keyframe. */
const FLV_KEYFRAME = 1;
/** AVCPacketType of a coded frame (0 is the decoder config). */
const AVC_NALU = 1;

/**
 * Reads an HTTP/1.1 response with a chunked body (Node's for a live
 * response) until the FLV body holds a whole coded video frame.
 */
class FirstVideoFrame {
  private head = '';
  private headDone = false;
  /** The chunked coding's state: bytes left of the current chunk, or -1 while its size line is read. */
  private chunkLeft = -1;
  private sizeLine = '';
  private skipCrlf = 0;
  private readonly flv = new FlvDemuxer();
  private videoFrame = false;

  /** True once a whole coded video frame has arrived; throws on a response that is not a 200, or a first frame that is no keyframe. */
  feed(data: Buffer): boolean {
    let at = 0;
    if (!this.headDone) {
      const text = this.head + data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head = text;
        return false;
      }
      const status = text.slice(9, 12);
      if (status !== '200') throw new Error(`status ${status}`);
      this.headDone = true;
      at = end + 4 - this.head.length;
    }
    while (at < data.length) {
      if (this.skipCrlf > 0) {
        const skip = Math.min(this.skipCrlf, data.length - at);
        this.skipCrlf -= skip;
        at += skip;
      } else if (this.chunkLeft < 0) {
        const byte = data[at++]!;
        if (byte === 0x0a) {
          this.chunkLeft = parseInt(this.sizeLine, 16);
          this.sizeLine = '';
        } else if (byte !== 0x0d) this.sizeLine += String.fromCharCode(byte);
      } else {
        const take = Math.min(this.chunkLeft, data.length - at);
        this.videoFrame ||= this.holdsVideoFrame(this.flv.push(data.subarray(at, at + take)));
        this.chunkLeft -= take;
        at += take;
        if (this.chunkLeft === 0) {
          this.chunkLeft = -1;
          this.skipCrlf = 2;
        }
      }
    }
    return this.videoFrame;
  }

  /** Whether `tags` hold a coded video frame; throws when the first is no keyframe. */
  private holdsVideoFrame(tags: FlvTagRecord[]): boolean {
    const frame = tags.find((tag) => tag.kind === 'video' && tag.body[1] === AVC_NALU);
    if (frame && frame.body[0]! >> 4 !== FLV_KEYFRAME) throw new Error('first frame not a keyframe');
    return frame !== undefined;
  }
}

const sockets: Socket[] = [];
const result: StormResult = { firstVideoMs: [], connectMs: [], failures: {} };
let settled = 0;
const total = Number(players);
const started = performance.now();

function settle(): void {
  if (++settled < total) return;
  finish();
}

function fail(reason: string): void {
  result.failures[reason] = (result.failures[reason] ?? 0) + 1;
  settle();
}

function join(): void {
  const socket = connect({ host, port: Number(port) });
  sockets.push(socket);
  const reader = new FirstVideoFrame();
  let done = false;
  const end = (reason: string | undefined) => {
    if (done) return;
    done = true;
    if (reason === undefined) {
      result.firstVideoMs.push(performance.now() - started);
      settle();
    } else fail(reason);
  };
  socket.once('connect', () => {
    result.connectMs.push(performance.now() - started);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  });
  socket.on('data', (data: Buffer) => {
    if (done) return;
    try {
      if (reader.feed(data)) end(undefined);
    } catch (err) {
      end((err as Error).message);
      socket.destroy();
    }
  });
  socket.on('error', (err: NodeJS.ErrnoException) => end(err.code ?? err.message));
  socket.on('close', () => end('closed before a video frame'));
}

let finished = false;

function finish(): void {
  if (finished) return;
  finished = true;
  const waiting = total - settled;
  if (waiting > 0) result.failures['no video frame in time'] = waiting;
  process.send!(result, () => {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}

for (let i = 0; i < total; i++) join();
setTimeout(finish, Number(timeoutMs)).unref();
