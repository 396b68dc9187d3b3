// The bench's clients against a capturing server: what they put on the wire
// (chunk size, headers, writes) and how a player acknowledges.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChunkReader } from '../../rtmpd/src/rtmp/wire/chunk-reader.ts';
import { serializeMessage } from '../../rtmpd/src/rtmp/wire/chunk-writer.ts';
import { connectResult, onStatus, parseCommand, result } from '../../rtmpd/src/rtmp/wire/commands.ts';
import { parseUserControl, readControlValue, setChunkSize, setPeerBandwidth, UserControlEvent } from '../../rtmpd/src/rtmp/wire/control.ts';
import { ServerHandshake } from '../../rtmpd/src/rtmp/wire/handshake.ts';
import { ChunkStreamId, MessageType } from '../../rtmpd/src/rtmp/wire/message-types.ts';
import { until } from '../../rtmpd/test/support/wait.ts';
import { failureReason, OBS_STYLE, PeerFailure, RtmpPeer, type PublisherStyle } from './rtmp-peer.ts';

/** A User Control ping request (event 6), which a player answers with a ping response. */
function pingRequest(timestamp: number): Buffer {
  const body = Buffer.alloc(6);
  body.writeUInt16BE(UserControlEvent.pingRequest, 0);
  body.writeUInt32BE(timestamp, 2);
  return body;
}

interface Received {
  typeId: number;
  timestamp: number;
  body: Buffer;
}

/** One accepted connection: every message it sent, parsed, and a way to send it media. */
interface Capture {
  messages: Received[];
  /** The inbound chunk size after each message, to see when Set Chunk Size took effect. */
  chunkSizes: number[];
  send(typeId: number, timestamp: number, body: Buffer): void;
}

interface CaptureOptions {
  /** Set Chunk Size the server announces after connect. */
  chunkSize?: number;
  /** Set Peer Bandwidth the server announces after connect. */
  peerBandwidth?: number;
  /** What the server does instead of answering this command: hang up, say nothing, or refuse with an onStatus code. */
  misbehave?: { on: string; by: 'closing' | 'silence' | { code: string } };
}

const servers: Server[] = [];
const peers: RtmpPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server that answers connect, createStream, publish and play as FMS does, and records the rest. */
async function captureServer(options: CaptureOptions = {}): Promise<{ url: (key: string) => string; captures: Capture[] }> {
  const captures: Capture[] = [];
  const server = createServer((socket: Socket) => {
    let outChunkSize = 128;
    const capture: Capture = {
      messages: [],
      chunkSizes: [],
      send: (typeId, timestamp, body) =>
        socket.write(serializeMessage(typeId === MessageType.video ? 6 : 7, typeId, 1, timestamp, body, outChunkSize)),
    };
    captures.push(capture);
    const reply = (streamId: number, body: Buffer) =>
      socket.write(serializeMessage(streamId ? ChunkStreamId.streamCommand : ChunkStreamId.command, 20, streamId, 0, body, outChunkSize));
    const reader = new ChunkReader((typeId, _streamId, timestamp, body) => {
      capture.messages.push({ typeId, timestamp, body: Buffer.from(body) });
      capture.chunkSizes.push(reader.chunkSize);
      if (typeId !== MessageType.commandAmf0) return;
      const cmd = parseCommand(typeId, body);
      const { misbehave } = options;
      if (misbehave?.on === cmd.name) {
        if (misbehave.by === 'closing') socket.destroy();
        else if (misbehave.by !== 'silence') reply(1, onStatus({ level: 'error', code: misbehave.by.code, description: '' }));
        return;
      }
      if (cmd.name === 'connect') {
        if (options.peerBandwidth) socket.write(setPeerBandwidth(options.peerBandwidth));
        if (options.chunkSize) {
          socket.write(setChunkSize(options.chunkSize));
          outChunkSize = options.chunkSize;
        }
        reply(0, connectResult(cmd.transactionId, 0));
      } else if (cmd.name === 'createStream') reply(0, result(cmd.transactionId, 1));
      else if (cmd.name === 'publish') reply(1, onStatus({ level: 'status', code: 'NetStream.Publish.Start', description: '' }));
      else if (cmd.name === 'play') reply(1, onStatus({ level: 'status', code: 'NetStream.Play.Start', description: '' }));
    });
    const handshake = new ServerHandshake((bytes) => socket.write(bytes));
    let shaken = false;
    socket.on('data', (data: Buffer) => {
      if (!shaken) {
        const rest = handshake.push(data);
        if (rest === undefined) return;
        shaken = true;
        data = rest;
      }
      reader.push(data);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: (key) => `rtmp://127.0.0.1:${port}/live/${key}`, captures };
}

async function publisher(url: string, style: PublisherStyle): Promise<RtmpPeer> {
  const peer = await RtmpPeer.connect(url, style);
  peers.push(peer);
  await peer.publish();
  return peer;
}

const body = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));

describe('bench publisher', () => {
  it('announces 4096-byte chunks before connect and sends each message whole, with fmt 1 headers after the first', async () => {
    const { url, captures } = await captureServer();
    const peer = await publisher(url('obs'), OBS_STYLE);
    const write = vi.spyOn(peer.socket, 'write');
    const sent = [
      { typeId: MessageType.video, timestamp: 0, body: body(10_000, 1) },
      { typeId: MessageType.audio, timestamp: 0, body: body(300, 2) },
      { typeId: MessageType.audio, timestamp: 21, body: body(310, 3) },
      { typeId: MessageType.video, timestamp: 40, body: body(4096, 4) },
      { typeId: MessageType.video, timestamp: 80, body: body(9000, 5) },
    ];
    // The body is copied as it is sent: the load generator builds every probed frame in one reused buffer.
    for (const m of sent) {
      const reused = Buffer.from(m.body);
      peer.sendMedia(m.typeId, m.timestamp, reused);
      reused.fill(0);
    }
    expect(write).toHaveBeenCalledTimes(sent.length);
    // Wire size: a 12-byte fmt 0 header the first time on a chunk stream, 8 bytes (fmt 1) after, 1 byte per further chunk.
    const wire = write.mock.calls.map(([bytes]) => (bytes as Buffer).length);
    expect(wire).toEqual([12 + 10_000 + 2, 12 + 300, 8 + 310, 8 + 4096, 8 + 9000 + 2]);
    const capture = captures[0]!;
    await until(
      () => capture.messages.filter((m) => m.typeId <= MessageType.video && m.typeId >= MessageType.audio).length === sent.length,
    );
    const first = capture.messages[0]!;
    expect(first.typeId).toBe(MessageType.setChunkSize);
    expect(readControlValue(first.body, 'chunk_size')).toBe(4096);
    expect(parseCommand(MessageType.commandAmf0, capture.messages[1]!.body).name).toBe('connect');
    const media = capture.messages.filter((m) => m.typeId === MessageType.audio || m.typeId === MessageType.video);
    expect(media.map(({ typeId, timestamp }) => ({ typeId, timestamp }))).toEqual(
      sent.map(({ typeId, timestamp }) => ({ typeId, timestamp })),
    );
    media.forEach((m, i) => expect(m.body.equals(sent[i]!.body)).toBe(true));
  });

  it('writes chunk by chunk like librtmp, and keeps the 128-byte chunks of cameras without announcing them', async () => {
    const { url, captures } = await captureServer();
    const peer = await publisher(url('camera'), { chunkSize: 128, nagle: false, writes: 'chunk' });
    const write = vi.spyOn(peer.socket, 'write');
    const frame = body(1000, 9);
    peer.sendMedia(MessageType.video, 0, frame);
    expect(write.mock.calls.map(([bytes]) => (bytes as Buffer).length)).toEqual([12 + 128, ...Array(6).fill(1 + 128), 1 + 1000 - 7 * 128]);
    const capture = captures[0]!;
    await until(() => capture.messages.some((m) => m.typeId === MessageType.video));
    expect(capture.messages.some((m) => m.typeId === MessageType.setChunkSize)).toBe(false);
    expect(capture.messages.find((m) => m.typeId === MessageType.video)!.body.equals(frame)).toBe(true);
  });

  it("adopts the server's chunk size and says so, as FFmpeg does", async () => {
    const { url, captures } = await captureServer({ chunkSize: 60_000 });
    const peer = await publisher(url('ffmpeg'), { chunkSize: 'server', nagle: true, writes: 'message' });
    const write = vi.spyOn(peer.socket, 'write');
    peer.sendMedia(MessageType.video, 0, body(20_000, 3));
    expect((write.mock.calls[0]![0] as Buffer).length).toBe(12 + 20_000); // one chunk
    const capture = captures[0]!;
    await until(() => capture.messages.some((m) => m.typeId === MessageType.video));
    const announced = capture.messages.find((m) => m.typeId === MessageType.setChunkSize)!;
    expect(readControlValue(announced.body, 'chunk_size')).toBe(60_000);
    expect(capture.chunkSizes.at(-1)).toBe(60_000);
  });
});

describe('bench player', () => {
  /** Plays 40 frames of 5000 bytes; returns what reads the acknowledgements the server has received so far, and a ping that resolves once answered. */
  async function acksWhilePlaying(peerBandwidth: number | undefined): Promise<{ acksSoFar: () => number[]; pinged: () => Promise<void> }> {
    const { url, captures } = await captureServer(peerBandwidth ? { peerBandwidth } : {});
    const player = await RtmpPeer.connect(url('watch'), undefined);
    peers.push(player);
    let received = 0;
    await player.play(() => received++);
    const capture = captures[0]!;
    for (let i = 0; i < 40; i++) capture.send(MessageType.video, i * 40, body(5000, i));
    await until(() => received === 40);
    return {
      acksSoFar: () => capture.messages.filter((m) => m.typeId === MessageType.acknowledgement).map((m) => readControlValue(m.body, 'ack')),
      // The player answers a ping after what it read before: an acknowledgement of the frames would arrive ahead of the answer.
      pinged: async () => {
        capture.send(MessageType.userControl, 0, pingRequest(1));
        await until(() =>
          capture.messages.some(
            (m) => m.typeId === MessageType.userControl && parseUserControl(m.body).event === UserControlEvent.pingResponse,
          ),
        );
      },
    };
  }

  it("acknowledges every tenth of the server's Set Peer Bandwidth, as librtmp does", async () => {
    const { acksSoFar } = await acksWhilePlaying(50_000);
    await until(() => (acksSoFar().at(-1) ?? 0) > 150_000);
    const acks = acksSoFar();
    expect(acks.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < acks.length; i++) expect(acks[i]! - acks[i - 1]!).toBeGreaterThan(5_000);
    expect(acks.at(-1)!).toBeGreaterThan(150_000);
  });

  it("waits for a tenth of librtmp's 2.5 MB default when the server names no bandwidth", async () => {
    const { acksSoFar, pinged } = await acksWhilePlaying(undefined);
    await pinged();
    expect(acksSoFar()).toEqual([]);
  });
});

describe('bench connection failures', () => {
  /** What connecting and playing `watch` against a server that misbehaves so threw: its reason. */
  async function playFailure(misbehave: CaptureOptions['misbehave']): Promise<string> {
    const { url } = await captureServer({ misbehave });
    const failure = await RtmpPeer.connect(url('watch'), undefined, 300)
      .then((player) => {
        peers.push(player);
        return player.play(() => {});
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(PeerFailure);
    return (failure as PeerFailure).reason;
  }

  it('says in which step a connection failed and how: closed, silent or refused', async () => {
    expect(await playFailure({ on: 'connect', by: 'closing' })).toMatch(/^connect: (closed|reset) by the server$/);
    expect(await playFailure({ on: 'createStream', by: 'silence' })).toBe('createStream: no answer within 0.3 s');
    expect(await playFailure({ on: 'play', by: { code: 'NetStream.Play.StreamNotFound' } })).toBe('play: NetStream.Play.StreamNotFound');
  });

  it('names a reset, a refused TCP connect and a clean close of a live connection', () => {
    const errno = (code: string) => Object.assign(new Error(`write ${code}`), { code });
    expect(failureReason('connect', errno('EPIPE'))).toBe('connect: reset by the server');
    expect(failureReason('handshake', errno('ECONNREFUSED'))).toBe('handshake: refused at TCP connect');
    expect(failureReason('live', undefined)).toBe('live: closed by the server');
    expect(failureReason('live', errno('ECONNRESET'))).toBe('live: reset by the server');
  });
});
