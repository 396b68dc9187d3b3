// The server against real clients: FFmpeg publishes, ffprobe and rtmpdump
// (librtmp, the stack OBS uses) play back; our own client covers the rest.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RtmpClient, type StatusInfo } from '../../../test/support/rtmp-client.ts';
import type { MediaKind } from '../../flv/media-kind.ts';
import { streamId } from '../../hub/names.ts';
import { startTestRtmpServer, testClient } from '../../../test/support/rtmp-server.ts';
import { countFrames } from '../../../test/support/processes.ts';
import { publishTestPattern, stopAll } from '../../../test/support/processes.ts';
import { prng, randomInt } from '../../../test/support/random.ts';
import { FakeSubscriber } from '../../../test/support/fake-subscriber.ts';
import { sleep, until } from '../../../test/support/wait.ts';
import { encodeAmf0 } from '../wire/amf0.ts';
import { silentLogger } from './logger.ts';
import { ChunkReader } from '../wire/chunk-reader.ts';
import { serializeMessage } from '../wire/chunk-writer.ts';
import { parseCommand } from '../wire/commands.ts';
import { ClientHandshake } from '../wire/handshake.ts';
import { windowAckSize } from '../wire/control.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';

const run = promisify(execFile);

function spawnTracked(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

/** Real H.264/AAC messages, from the FFmpeg capture, for our client to publish. */
function capturedMedia(): { kind: MediaKind; timestamp: number; body: Buffer }[] {
  const media: { kind: MediaKind; timestamp: number; body: Buffer }[] = [];
  const reader = new ChunkReader((typeId, _s, timestamp, body) => {
    if (typeId === MessageType.video) media.push({ kind: 'video', timestamp, body });
    if (typeId === MessageType.audio) media.push({ kind: 'audio', timestamp, body });
  });
  reader.push(readFileSync(new URL('../wire/testdata/ffmpeg-publish.bin', import.meta.url)));
  return media;
}

function sendMedia(client: RtmpClient, m: { kind: MediaKind; timestamp: number; body: Buffer }): void {
  if (m.kind === 'video') client.sendVideo(m.timestamp, m.body);
  else client.sendAudio(m.timestamp, m.body);
}

function publishCaptured(client: RtmpClient): void {
  for (const m of capturedMedia()) sendMedia(client, m);
}

/** pause(true), then pause(false), on the client's play stream, each once the server has answered the one before. */
async function pauseAndUnpause(client: RtmpClient, statuses: string[]): Promise<void> {
  const pause = (on: boolean) =>
    client.socket.write(
      serializeMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, client.streamId, 0, encodeAmf0('pause', 0, null, on, 0), 4096),
    );
  pause(true);
  await until(() => statuses.includes('NetStream.Pause.Notify'));
  pause(false);
  await until(() => statuses.includes('NetStream.Unpause.Notify'));
}

describe('rtmp server with FFmpeg, ffprobe and rtmpdump', () => {
  it('relays an FFmpeg publish to ffprobe and rtmpdump, refuses a second publisher, ends the stream when FFmpeg leaves', async () => {
    const { hub, url, stats } = await startTestRtmpServer();
    onTestFinished(stopAll);
    // Live until the players have looked: a 6 s publish ended before ffprobe, started
    // on a loaded machine, had read it ("no stream live/test is live").
    const ffmpeg = publishTestPattern(url('test'), { seconds: 120, size: '320x240' });
    await until(() => hub.get('live', 'test')?.videoHeader !== undefined);
    const stream = hub.get('live', 'test')!;
    expect(stats.protocols.rtmp.connections.publishing).toBe(1);

    // A second publisher of the live key hears BadName; the first goes on.
    const intruder = await testClient(url('test'));
    const refused = await intruder.publish().catch((err: unknown) => err);
    expect((refused as { code?: string }).code).toBe('NetStream.Publish.BadName');
    expect(hub.get('live', 'test')).toBe(stream);

    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-rtmp-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'rtmpdump.flv');
    const rtmpdump = spawnTracked('rtmpdump', ['-q', '-r', url('test'), '-o', out]);

    const { stdout } = await run(
      'ffprobe',
      ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', url('test')],
      { timeout: 20_000 },
    );
    const streams = (JSON.parse(stdout) as { streams: { codec_name: string; width?: number; height?: number }[] }).streams;
    expect(streams).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codec_name: 'h264', width: 320, height: 240 }),
        expect.objectContaining({ codec_name: 'aac' }),
      ]),
    );
    expect(streams).toHaveLength(2);
    const framesBefore = stream.stats.videoFrames;
    await until(() => stream.stats.videoFrames > framesBefore);

    ffmpeg.quit();
    expect(await ffmpeg.exited).toBe(0);
    await until(() => hub.get('live', 'test') === undefined);
    // rtmpdump exits on UnpublishNotify/Play.Stop; what it saved decodes.
    await exited(rtmpdump);
    const saved = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', out]);
    const savedStreams = (JSON.parse(saved.stdout) as { streams: { codec_name: string }[] }).streams.map((s) => s.codec_name).sort();
    expect(savedStreams).toEqual(['aac', 'h264']);
    await until(() => stats.protocols.rtmp.connections.publishing === 0 && stats.protocols.rtmp.connections.playing === 0);
    expect(stats.protocols.rtmp.protocolErrors).toEqual({});
  });

  it('with --player-write-interval-ms, sends players fewer, larger writes of every frame, which rtmpdump saves playable', async () => {
    // Two players: the stream has as many as the merge asks for.
    const { hub, url, stats } = await startTestRtmpServer({
      playerWriteIntervalMs: 200,
      playerWriteIntervalMinPlayers: 2,
      playWaitSeconds: 10,
    });
    onTestFinished(stopAll);
    // Both players wait for the publisher, so each gets every frame from the first.
    const player = await testClient(url('merged'));
    let reads = 0;
    player.socket.on('data', () => reads++);
    let messages = 0;
    let frames = 0;
    player.on('media', (kind, _timestamp, body) => {
      messages++;
      // AVC NAL units, not the decoder configuration.
      if (kind === 'video' && body[1] === 1) frames++;
    });
    const playing = player.play();
    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-rtmp-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'rtmpdump.flv');
    const rtmpdump = spawnTracked('rtmpdump', ['-q', '-r', url('merged'), '-o', out]);
    await until(() => stats.protocols.rtmp.connections.waiting === 2);
    const ffmpeg = publishTestPattern(url('merged'), { seconds: 4, size: '320x240' });
    await until(() => hub.get('live', 'merged') !== undefined);
    const stream = hub.get('live', 'merged')!;
    await playing;
    expect(await ffmpeg.exited).toBe(0);
    await until(() => hub.get('live', 'merged') === undefined);
    await until(() => frames === stream.stats.videoFrames);
    expect(frames).toBeGreaterThan(50);
    // Unmerged, a player reads about a message at a time (25 frames and 43 AAC frames a second).
    expect(reads).toBeLessThan(messages / 4);
    await exited(rtmpdump);
    const saved = await countFrames(out);
    expect(Object.keys(saved.frames).sort()).toEqual(['aac', 'h264']);
    expect(saved.frames['h264']).toBe(stream.stats.videoFrames);
  });
});

describe('rtmp server with the project client', () => {
  it('relays publisher to player without a tcUrl, simple and digest handshakes', async () => {
    const { hub, url } = await startTestRtmpServer();
    const publisher = await testClient(url('own'), { tcUrl: null, handshake: 'simple' });
    await publisher.publish();
    publisher.sendMetadata({ width: 160, height: 120, encoder: 'test' });
    const media = capturedMedia();
    // Header and the first GOP first, so a player that joins gets them from the cache.
    for (const m of media.slice(0, 10)) sendMedia(publisher, m);
    await until(() => (hub.get('live', 'own')?.stats.videoFrames ?? 0) > 0);

    const player = await testClient(url('own'));
    const received: { kind: MediaKind; timestamp: number; body: Buffer }[] = [];
    player.on('media', (kind, timestamp, body) => received.push({ kind, timestamp, body }));
    const statuses: StatusInfo[] = [];
    player.on('status', (info) => statuses.push(info));
    await player.play();
    for (const m of media.slice(10)) sendMedia(publisher, m);
    // The hub keeps AVC end-of-sequence (0x17 0x02) to itself.
    const expectedVideo = media.filter((m) => m.kind === 'video' && m.body[1] !== 2);
    await until(() => received.filter((m) => m.kind === 'video').length >= expectedVideo.length);
    expect(statuses.map((s) => s.code)).toEqual(['NetStream.Play.Reset', 'NetStream.Play.Start']);
    const data = received.filter((m) => m.kind === 'data').map((m) => m.body.subarray(0, 20).toString('latin1'));
    expect(data.some((d) => d.includes('|RtmpSampleAccess'))).toBe(true);
    expect(data.some((d) => d.includes('onMetaData'))).toBe(true);
    const video = received.filter((m) => m.kind === 'video');
    video.forEach((m, i) => {
      expect(m.timestamp).toBe(expectedVideo[i]!.timestamp);
      expect(m.body.equals(expectedVideo[i]!.body)).toBe(true);
    });

    const ended = new Promise<void>((resolve) => player.once('close', () => resolve()));
    publisher.close();
    await ended;
    expect(statuses.map((s) => s.code)).toContain('NetStream.Play.UnpublishNotify');
    await until(() => hub.size === 0);
  });

  it('answers StreamNotFound for an unknown key and keeps the connection', async () => {
    const { url } = await startTestRtmpServer();
    const player = await testClient(url('nobody'));
    const err = await player.play().catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('NetStream.Play.StreamNotFound');
    const reply = await player.call('getStreamLength', null, 'nobody');
    expect(reply.name).toBe('_result');
  });

  it('lets a player wait for a publisher when playWaitSeconds is set', async () => {
    const { url, hub } = await startTestRtmpServer({ playWaitSeconds: 5 });
    const player = await testClient(url('later'));
    const frames: number[] = [];
    player.on('media', (kind, ts) => kind === 'video' && frames.push(ts));
    const playing = player.play();
    // Waiting before the publisher comes: a play the server read after the publish would not wait at all.
    await until(() => hub.awaited(streamId('live', 'later')));
    const publisher = await testClient(url('later'));
    await publisher.publish();
    await playing;
    publishCaptured(publisher);
    await until(() => frames.length > 10);
  });

  it('answers an unknown command with _error, pings, pause and unpause', async () => {
    const { url } = await startTestRtmpServer();
    const publisher = await testClient(url('p'));
    await publisher.publish();
    publishCaptured(publisher);
    const client = await testClient(url('p'));
    const err = await client.call('noSuchCommand', null).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('NetConnection.Call.Failed');
    const statuses: string[] = [];
    client.on('status', (info) => statuses.push(String(info.code)));
    await client.play();
    await pauseAndUnpause(client, statuses);
  });

  it('refuses a publish to an invalid name with BadName', async () => {
    const { url } = await startTestRtmpServer();
    const client = await testClient(url('bad%20name'));
    const err = await client.publish().catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('NetStream.Publish.BadName');
  });
});

/** A raw connection past the handshake, for sending what no real client would. */
async function rawSession(port: number): Promise<{ socket: Socket; closed: Promise<void>; received: () => Buffer }> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const handshake = new ClientHandshake('digest', (b) => socket.write(b));
    let handshaken = false;
    socket.once('connect', () => handshake.start());
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // A done handshake given more bytes would take them for another S0S1S2 and send a C2 again.
      if (handshaken) return;
      try {
        handshaken = handshake.push(d) !== undefined;
        if (handshaken) resolve();
      } catch (err) {
        reject(err as Error);
      }
    });
  });
  return { socket, closed, received: () => Buffer.concat(chunks) };
}

describe('rtmp server under hostile input', () => {
  it('closes a malformed connect and keeps serving', async () => {
    const { url, server, stats } = await startTestRtmpServer();
    const { socket, closed } = await rawSession(server.address().port);
    socket.write(serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, 42), 128));
    await closed;
    expect(stats.protocols.rtmp.protocolErrors.bad_connect).toBe(1);
    // A ~60-byte connect with an app but no tcUrl is fine (node-media-server dies on it).
    const { socket: s2, received } = await rawSession(server.address().port);
    s2.write(serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, { app: 'live' }), 128));
    await until(() => received().includes('NetConnection.Connect.Success'));
    s2.destroy();
    const client = await testClient(url('alive'));
    await client.publish();
  });

  it('closes garbage, a bad version and a stalled handshake', async () => {
    const { server, stats } = await startTestRtmpServer({ connectTimeoutSeconds: 1 });
    const port = server.address().port;
    const open = () => {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      return { socket, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
    };
    const http = open();
    http.socket.write('GET / HTTP/1.1\r\n\r\n');
    await http.closed;
    const stalled = open();
    stalled.socket.write(Buffer.from([3, 0, 0]));
    await stalled.closed;
    expect(stats.protocols.rtmp.handshakeFailures).toEqual({ handshake_bad_version: 1, handshake_timeout: 1 });
    // Chunk stream garbage after a good handshake.
    const { socket, closed } = await rawSession(port);
    socket.write(Buffer.from([0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]));
    socket.write(Buffer.alloc(4096, 0x41));
    await closed;
    expect(Object.keys(stats.protocols.rtmp.protocolErrors).length).toBeGreaterThan(0);
    await until(() => server.connections === 0);
    expect(Object.values(stats.protocols.rtmp.connections).every((n) => n === 0)).toBe(true);
  });

  it("logs 10 lines of a scanner's 50 HTTP requests to the RTMP port, and counts every one", async () => {
    const lines: { msg?: string }[] = [];
    const logger = { ...silentLogger, warn: (obj: object, msg?: string) => void lines.push({ ...obj, msg }) };
    const { server, stats } = await startTestRtmpServer({}, { logger });
    const port = server.address().port;
    const scan = () =>
      new Promise<void>((resolve) => {
        const socket = netConnect({ port, host: '127.0.0.1' }, () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        socket.on('error', () => {});
        socket.once('close', () => resolve());
      });
    await Promise.all(Array.from({ length: 50 }, scan));
    expect(stats.protocols.rtmp.handshakeFailures).toEqual({ handshake_bad_version: 50 });
    expect(lines.filter((line) => line.msg === 'rtmp protocol error, closing')).toHaveLength(10);
  });

  it('closes connections that make no progress, each state by its own deadline, but spares a waiting player', async () => {
    // Deadlines of 3 s: each connection reaches the state it is to stall in well before, even on a loaded machine.
    const { server, stats, url, hub } = await startTestRtmpServer({
      connectTimeoutSeconds: 3,
      startTimeoutSeconds: 3,
      idleTimeoutSeconds: 3,
      maxPauseSeconds: 3,
      playWaitSeconds: 10,
    });
    const port = server.address().port;
    // Each connection's life is timed from before it was opened, so from before any of its deadlines began.
    const openedAt = new Map<Socket, number>();
    const opened = async <T extends { socket: Socket }>(open: () => Promise<T>): Promise<T> => {
      const at = performance.now();
      const connection = await open();
      openedAt.set(connection.socket, at);
      return connection;
    };
    const closedAfter = async (socket: Socket) => {
      await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
      return performance.now() - openedAt.get(socket)!;
    };
    const trickle = (socket: Socket, bytes: Buffer) => {
      let at = 0;
      const timer = setInterval(() => (at < bytes.length ? socket.write(bytes.subarray(at, ++at)) : undefined), 200);
      socket.once('close', () => clearInterval(timer));
    };
    // Handshaken, then a connect trickled a byte at a time: the deadline runs from accept all the same.
    const slowConnect = await opened(() => rawSession(port));
    trickle(slowConnect.socket, serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, { app: 'live' }), 128));
    // Connected, then nothing asked for.
    const idler = await opened(() => testClient(url('never')));
    // Publishing, then a keyframe that never ends, trickled.
    const trickler = await opened(() => testClient(url('trickled')));
    await trickler.publish();
    trickle(trickler.socket, serializeMessage(6, MessageType.video, trickler.streamId, 0, Buffer.alloc(100_000), 4096).subarray(0, 4096));
    // Playing, then paused for good.
    const publisher = await testClient(url('paused'));
    await publisher.publish();
    const feeding = setInterval(() => publishCaptured(publisher), 300);
    onTestFinished(() => clearInterval(feeding));
    const paused = await opened(() => testClient(url('paused')));
    await paused.play();
    paused.socket.write(
      serializeMessage(
        ChunkStreamId.streamCommand,
        MessageType.commandAmf0,
        paused.streamId,
        0,
        encodeAmf0('pause', 0, null, true, 0),
        4096,
      ),
    );
    // Waiting for a publisher is not idleness.
    const waiting = await testClient(url('later'));
    const waitingPlay = waiting.play();
    await until(() => hub.awaited(streamId('live', 'later')));
    // Connected after the waiting player, then nothing asked for: the sweep that closes it is past every deadline
    // the waiting player and the publisher could have been closed by.
    const last = await opened(() => testClient(url('never')));
    const lived = await Promise.all([slowConnect.socket, idler.socket, trickler.socket, paused.socket, last.socket].map(closedAfter));
    for (const ms of lived) expect(ms).toBeGreaterThanOrEqual(500);
    const closedAtDeadlines = { connect_timeout: 1, start_timeout: 2, idle_timeout: 1, pause_timeout: 1 };
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject(closedAtDeadlines);
    // The publisher that keeps sending and the waiting player are still there; the latter gets its stream.
    expect(publisher.socket.destroyed).toBe(false);
    expect(waiting.socket.destroyed).toBe(false);
    const late = await testClient(url('later'));
    await late.publish();
    await waitingPlay;
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject(closedAtDeadlines);
  });

  it('closes a connection whose message stays unfinished for the idle timeout, though it makes progress otherwise', async () => {
    const { stats, url } = await startTestRtmpServer({ idleTimeoutSeconds: 3 });
    const publisher = await testClient(url('fed'));
    await publisher.publish();
    const feeding = setInterval(() => publishCaptured(publisher), 300);
    onTestFinished(() => clearInterval(feeding));
    // A publisher that announces a 1 MiB keyframe, sends 13 bytes of it, and then complete audio messages.
    const hog = await testClient(url('hog'));
    await hog.publish();
    hog.flush();
    hog.socket.write(serializeMessage(7, MessageType.video, hog.streamId, 0, Buffer.alloc(1024 * 1024), 1024 * 1024).subarray(0, 13));
    const audio = setInterval(() => hog.sendAudio(0, Buffer.from([0xaf, 0x01, 0, 0])), 300);
    onTestFinished(() => clearInterval(audio));
    // A player that trickles a command it never finishes: every byte it sends is progress.
    const player = await testClient(url('fed'));
    await player.play();
    player.flush();
    const command = serializeMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, player.streamId, 0, Buffer.alloc(1000), 4096);
    let sent = 0;
    const trickle = setInterval(() => player.socket.write(command.subarray(sent, ++sent)), 200);
    onTestFinished(() => clearInterval(trickle));
    // Both closed at 3 s, to within the sweep.
    await until(() => stats.protocols.rtmp.protocolErrors.message_timeout === 2);
    await until(() => hog.socket.destroyed && player.socket.destroyed);
    expect(stats.inbound.held).toBe(0);
    expect(publisher.socket.destroyed).toBe(false);
  });

  it('survives sessions of corrupted FFmpeg bytes and keeps its books straight', async () => {
    const { server, stats, url, hub } = await startTestRtmpServer();
    const port = server.address().port;
    const capture = readFileSync(new URL('../wire/testdata/ffmpeg-publish.bin', import.meta.url));
    const random = prng(1);
    for (let round = 0; round < 30; round++) {
      const { socket, closed } = await rawSession(port);
      const bytes = Buffer.from(capture.subarray(0, 8000 + randomInt(random, 20_000)));
      for (let i = 0; i < 1 + (round % 8); i++) bytes[randomInt(random, bytes.length)] = randomInt(random, 256);
      socket.write(bytes);
      await Promise.race([closed, sleep(50)]);
      socket.destroy();
      await closed;
    }
    await until(() => server.connections === 0);
    expect(Object.values(stats.protocols.rtmp.connections).every((n) => n === 0)).toBe(true);
    expect(stats.protocols.rtmp.protocolErrors.internal).toBeUndefined();
    expect(hub.size).toBe(0);
    const client = await testClient(url('capture'));
    await client.publish();
  });

  it('holds a client that has not published to small messages, and such clients together to half the budget', async () => {
    // All from one address: no share of the budget per address.
    const { server, stats, url, hub } = await startTestRtmpServer({
      maxMessageBytesBeforePublish: 64 * 1024,
      partialMessagesMaxBytes: 1024 * 1024,
      maxConnectionsPerAddress: 0,
    });
    const port = server.address().port;
    // A 16 MiB message announced before connect is refused at its header: nothing is allocated for it.
    const huge = await rawSession(port);
    huge.socket.write(Buffer.concat([Buffer.from([0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]), Buffer.alloc(128)]));
    await huge.closed;
    expect(stats.protocols.rtmp.protocolErrors.message_too_large).toBe(1);
    // Clients that trickle 60 KiB messages they never finish: eight fit under half of the 1 MiB budget, the ninth does not.
    const firstChunk = serializeMessage(6, MessageType.audio, 1, 0, Buffer.alloc(60 * 1024), 128).subarray(0, 12 + 128);
    const tricklers = [];
    for (let i = 0; i < 9; i++) {
      const session = await rawSession(port);
      session.socket.write(firstChunk);
      tricklers.push(session);
      await until(
        () => stats.inbound.held === Math.min(i + 1, 8) * 60 * 1024 || stats.protocols.rtmp.protocolErrors.partial_budget_exceeded === 1,
      );
    }
    await tricklers[8]!.closed;
    expect(stats.protocols.rtmp.protocolErrors.partial_budget_exceeded).toBe(1);
    expect(stats.inbound.held).toBe(8 * 60 * 1024);
    // A publisher still has room for a 300 KiB keyframe that arrives in many reads.
    const publisher = await testClient(url('room'), { chunkSize: 4096 });
    await publisher.publish();
    const keyframe = capturedMedia().find((m) => m.kind === 'video' && m.body[0] === 0x17 && m.body[1] === 1)!;
    publisher.sendVideo(0, Buffer.concat([keyframe.body, Buffer.alloc(300 * 1024)]));
    await until(() => (hub.get('live', 'room')?.stats.keyframes ?? 0) === 1);
    expect(Object.keys(stats.protocols.rtmp.protocolErrors).sort()).toEqual(['message_too_large', 'partial_budget_exceeded']);
    for (const t of tricklers) t.socket.destroy();
    await until(() => stats.inbound.held === 0);
  });

  it('keeps half the budget for clients not publishing: publishers that announce messages they never finish cannot lock players out', async () => {
    // All from one address: no share of the budget per address.
    const { stats, url } = await startTestRtmpServer({ partialMessagesMaxBytes: 1024 * 1024, maxConnectionsPerAddress: 0 });
    // Each publisher announces a 200 KiB video message, sends its first byte and stops: 13 bytes that
    // took 200 KiB of the budget. Before, 30 of them took the whole default budget from one address, and
    // no client could connect (a connect longer than one 128-byte chunk is a message that takes from it).
    const hogs = [];
    for (let i = 0; i < 4; i++) {
      const hog = await testClient(url(`hog${i}`));
      await hog.publish();
      hog.flush();
      const header = serializeMessage(7, MessageType.video, hog.streamId, 0, Buffer.alloc(200 * 1024), 200 * 1024).subarray(0, 13);
      hog.socket.write(header);
      hogs.push(hog);
    }
    const refused = () => stats.protocols.rtmp.protocolErrors.partial_budget_exceeded ?? 0;
    await until(() => stats.inbound.held + refused() * 200 * 1024 === 4 * 200 * 1024);
    // A player whose connect spans chunks still connects and plays.
    const player = await testClient(url('hog0'), { chunkSize: 128, connectProperties: { swfUrl: 'x'.repeat(300) } });
    await player.play();
    // Two fit in the publishers' half (512 KiB); the others were closed.
    expect(refused()).toBe(2);
    expect(stats.inbound.held).toBe(2 * 200 * 1024);
    for (const hog of hogs) hog.destroy();
    await until(() => stats.inbound.held === 0);
  });

  it('logs and answers a refused publish of a 60,000-character key and a 30,000-character app with their first 128 characters', async () => {
    const lines: string[] = [];
    const record = (obj: object, msg?: string) => void lines.push(JSON.stringify({ ...obj, msg }));
    const logger = { debug: () => {}, info: record, warn: record, error: record };
    const { server } = await startTestRtmpServer({}, { logger });
    const app = 'a'.repeat(30_000);
    const client = await testClient(`rtmp://127.0.0.1:${server.address().port}/${app}/${'k'.repeat(60_000)}`, { tcUrl: null });
    const refused = (await client.publish().catch((err: unknown) => err)) as { code?: string; message: string };
    expect(refused.code).toBe('NetStream.Publish.BadName');
    expect(refused.message.length).toBeLessThan(400);
    // Before, the line held the app, the key and the reason (which repeats the key): 150 KB per publish.
    const line = lines.find((l) => l.includes('rtmp publish refused'))!;
    expect(line.length).toBeLessThan(1000);
    expect(line).toContain('(60000 characters)');
  });

  it("keeps one address's publishers to a quarter of their half of the budget, so they cannot take every other publisher's room", async () => {
    // Halves of 8 MiB, of which an address may hold 2 MiB (a publisher alone: a 1 MiB message and 1 MiB of small ones).
    const { stats, url, hub } = await startTestRtmpServer({ partialMessagesMaxBytes: 16 * 1024 * 1024, maxMessageBytes: 1024 * 1024 });
    const announced = 1024 * 1024;
    const hogs = [];
    for (let i = 0; i < 9; i++) {
      const hog = await testClient(url(`hog${i}`), { localAddress: '127.0.0.2' });
      await hog.publish();
      hog.flush();
      hog.socket.write(serializeMessage(7, MessageType.video, hog.streamId, 0, Buffer.alloc(announced), announced).subarray(0, 13));
      hogs.push(hog);
    }
    // Two fit the address's 2 MiB; the others were closed. Before, eight held the whole 8 MiB.
    const refused = () => stats.protocols.rtmp.protocolErrors.partial_budget_exceeded ?? 0;
    await until(() => stats.inbound.held + refused() * announced === 9 * announced);
    expect(refused()).toBe(7);
    // A publisher from another address has room for a 900 KiB keyframe that arrives in many reads.
    const publisher = await testClient(url('room'), { localAddress: '127.0.0.3', chunkSize: 4096 });
    await publisher.publish();
    const keyframe = capturedMedia().find((m) => m.kind === 'video' && m.body[0] === 0x17 && m.body[1] === 1)!;
    publisher.sendVideo(0, Buffer.concat([keyframe.body, Buffer.alloc(900 * 1024)]));
    await until(() => (hub.get('live', 'room')?.stats.keyframes ?? 0) === 1);
    expect(refused()).toBe(7);
    for (const hog of hogs) hog.destroy();
    await until(() => stats.inbound.held === 0);
  });

  it("never keeps an address's share below what one publisher may hold", async () => {
    // A quarter of the 4 MiB half is 1 MiB, less than one publisher's 8 MiB message and 1 MiB of small ones.
    const { stats, url, hub } = await startTestRtmpServer({ partialMessagesMaxBytes: 8 * 1024 * 1024 });
    const publisher = await testClient(url('big'), { chunkSize: 4096 });
    await publisher.publish();
    const keyframe = capturedMedia().find((m) => m.kind === 'video' && m.body[0] === 0x17 && m.body[1] === 1)!;
    publisher.sendVideo(0, Buffer.concat([keyframe.body, Buffer.alloc(3 * 1024 * 1024)]));
    await until(() => (hub.get('live', 'big')?.stats.keyframes ?? 0) === 1);
    expect(stats.protocols.rtmp.protocolErrors.partial_budget_exceeded).toBeUndefined();
  });

  it('closes a publisher whose onMetaData would decode to gigabytes, a cycle or a million objects, and keeps the stream of one that sends it whole', async () => {
    const { url, stats, hub } = await startTestRtmpServer();
    const longString = Buffer.concat([Buffer.from([0x0c, 0, 0, 0xea, 0x60]), Buffer.alloc(60_000, 0x78)]);
    const reference = (index: number) => Buffer.from([0x07, index >> 8, index & 0xff]);
    const key = (name: string) => Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name)]);
    // @setDataFrame onMetaData {l0: [60 KB], l1: [l0, l0], l2: [l1, l1], ...}: 60 KB that re-encode as 15 MB (2^8 times),
    // and every level more doubles it: the 20 levels of 60 KB more would take 60 GB.
    const metadata = (...properties: Buffer[]) =>
      Buffer.concat([encodeAmf0('@setDataFrame', 'onMetaData'), Buffer.from([0x08, 0, 0, 0, 0]), ...properties, Buffer.from([0, 0, 9])]);
    const levels = Array.from({ length: 8 }, (_, i) =>
      Buffer.concat([key(`l${i + 1}`), Buffer.from([0x0a, 0, 0, 0, 2]), reference(i + 1), reference(i + 1)]),
    );
    const bomb = metadata(key('l0'), Buffer.from([0x0a, 0, 0, 0, 1]), longString, ...levels);
    const cycle = metadata(key('self'), reference(0)); // the metadata object inside itself
    // 100,000 empty objects: 400 KB that would take 20 MB of heap, as long as the stream lives.
    const wide = metadata(key('wide'), Buffer.from([0x0a, 0, 1, 0x86, 0xa0]), Buffer.alloc(400_000).fill(Buffer.from([3, 0, 0, 9])));
    const whole = metadata(key('l0'), Buffer.from([0x0a, 0, 0, 0, 1]), longString, key('again'), reference(1));
    for (const [name, body] of [
      ['bomb', bomb],
      ['cycle', cycle],
      ['wide', wide],
      ['whole', whole],
    ] as const) {
      const publisher = await testClient(url(name));
      await publisher.publish();
      publisher.sendMessage(ChunkStreamId.data, MessageType.dataAmf0, 0, body);
      if (name !== 'whole') await new Promise((resolve) => publisher.once('close', resolve));
    }
    await until(() => hub.get('live', 'whole')?.metadataValues.again !== undefined);
    expect(stats.protocols.rtmp.protocolErrors).toEqual({ amf_too_large: 2, amf_bad_reference: 1 });
  });

  it('stops reading a client that sends pings and never reads the answers, and reads on once it does', async () => {
    const { server, stats } = await startTestRtmpServer({ connectTimeoutSeconds: 60 });
    const { socket } = await rawSession(server.address().port);
    socket.pause();
    // A ping request (fmt 0), then 16 MiB of fmt 3 continuations: 7 bytes each, each answered with 18.
    const ping = Buffer.from('02000000000006040000000000060000002a', 'hex');
    const pings = Buffer.alloc(7 * 2_400_000).fill(Buffer.from('c2000600000001', 'hex'));
    socket.write(Buffer.concat([ping, pings]));
    const sent = 18 + pings.length;
    const read = () => stats.protocols.rtmp.bytesIn - 3073; // less C0, C1 and C2
    // The server reads until the kernel's buffers are full of answers and 64 KiB more wait, and no further:
    // however long a loaded machine takes to get there, what it has read then stays the same for a second.
    const giveUpAt = performance.now() + 20_000;
    let readThen: number;
    do {
      readThen = read();
      await sleep(1000);
    } while (read() !== readThen && performance.now() < giveUpAt);
    expect(read()).toBe(readThen);
    expect(read()).toBeLessThan(sent / 2);
    socket.resume();
    await until(() => read() > readThen + 1024 * 1024);
  });

  it('answers connects whose app is a long run of slashes at once', async () => {
    const { url, stats } = await startTestRtmpServer();
    // Trimming 'x////…x' with /\/+$/ took a second each: these 40 would have taken the server 40 s.
    const app = `x${'/'.repeat(60_000)}x`;
    // The CPU time the connects cost (server and clients share this process), not the
    // time they took: a loaded machine stretched that past 5 s (5.9 s), and the
    // handshakes past the client's 10 s.
    const cpuBefore = process.cpuUsage();
    const clients = await Promise.all(
      Array.from({ length: 40 }, () => testClient(url('k'), { connectProperties: { app }, timeoutMs: 60_000 })),
    );
    const cpu = process.cpuUsage(cpuBefore);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(5000);
    expect(clients).toHaveLength(40);
    expect(stats.protocols.rtmp.protocolErrors).toEqual({});
  });

  it('lets go of a player whose connection fails in the read that asked to play', async () => {
    const { server, url, hub, stats } = await startTestRtmpServer();
    const publisher = await testClient(url('live1'));
    await publisher.publish();
    const { socket, closed } = await rawSession(server.address().port);
    const command = (csid: number, streamId: number, ...values: Parameters<typeof encodeAmf0>) =>
      serializeMessage(csid, MessageType.commandAmf0, streamId, 0, encodeAmf0(...values), 128);
    socket.write(
      Buffer.concat([
        command(3, 0, 'connect', 1, { app: 'live' }),
        command(3, 0, 'createStream', 2, null),
        command(5, 1, 'play', 3, null, 'live1'),
        Buffer.from([0xc9]), // a continuation chunk on a chunk stream never opened: a protocol error
      ]),
    );
    await closed;
    await until(() => server.connections === 1 && stats.protocols.rtmp.protocolErrors.chunk_no_previous_header !== undefined);
    expect(stats.protocols.rtmp.protocolErrors.chunk_no_previous_header).toBe(1);
    expect(hub.get('live', 'live1')?.subscriberCount).toBe(0);
  });

  it('refuses a command before connect and enforces maxConnections', async () => {
    const { server, stats, url } = await startTestRtmpServer({ maxConnections: 1 });
    const port = server.address().port;
    const first = await rawSession(port);
    const refused = await RtmpClient.connect(url('full'), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    const second = netConnect({ port, host: '127.0.0.1' });
    second.on('error', () => {});
    await new Promise<void>((resolve) => second.once('close', () => resolve()));
    expect(stats.protocols.rtmp.connectionsRefused.max_connections).toBe(2);
    first.socket.write(serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('createStream', 2, null), 128));
    await first.closed;
    expect(stats.protocols.rtmp.protocolErrors.command_before_connect).toBe(1);
  });

  it('limits connections per client address, so one host cannot take every slot', async () => {
    const { server, stats } = await startTestRtmpServer({ maxConnectionsPerAddress: 2 });
    const port = server.address().port;
    const from = (localAddress: string) => {
      const socket = netConnect({ port, host: '127.0.0.1', localAddress });
      socket.on('error', () => {});
      onTestFinished(() => void socket.destroy());
      return { socket, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
    };
    const first = [from('127.0.0.2'), from('127.0.0.2')];
    await until(() => server.connections === 2);
    const third = from('127.0.0.2');
    await third.closed;
    expect(stats.protocols.rtmp.connectionsRefused).toEqual({
      max_connections: 0,
      per_address: 1,
      bad_proxy_header: 0,
      proxy_header_timeout: 0,
      idle_no_header: 0,
      publish_rate: 0,
    });
    // Another address still gets in, and the first gets a slot back when one of its connections ends.
    from('127.0.0.3');
    await until(() => server.connections === 3);
    first[0]!.socket.destroy();
    await until(() => server.connections === 2);
    from('127.0.0.2');
    await until(() => server.connections === 3);
    expect(stats.protocols.rtmp.connectionsRefused.per_address).toBe(1);
  });
});

describe('rtmp server shutdown', () => {
  it('tells publishers and players, then closes', async () => {
    const { server, url, hub } = await startTestRtmpServer();
    const publisher = await testClient(url('bye'));
    await publisher.publish();
    publishCaptured(publisher);
    const player = await testClient(url('bye'));
    await player.play();
    const publisherStatus: string[] = [];
    const playerStatus: string[] = [];
    publisher.on('status', (i) => publisherStatus.push(String(i.code)));
    player.on('status', (i) => playerStatus.push(String(i.code)));
    const closed = Promise.all([once(publisher), once(player)]);
    await server.close();
    await closed;
    expect(playerStatus).toContain('NetStream.Play.Stop');
    expect(publisherStatus).toContain('NetStream.Unpublish.Success');
    expect(hub.size).toBe(0);
    const refused = await RtmpClient.connect(url('bye'), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
  });
});

const once = (client: RtmpClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

describe('commands seen on the wire', () => {
  it('sends Window Ack Size, Set Peer Bandwidth and Set Chunk Size before the connect _result', async () => {
    const { server } = await startTestRtmpServer({ chunkSize: 8192 });
    const { socket, received } = await rawSession(server.address().port);
    const before = received().length;
    socket.write(
      serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, { app: 'live', tcUrl: 'rtmp://x/live' }), 128),
    );
    await until(() => received().includes('NetConnection.Connect.Success'));
    const types: number[] = [];
    let result: unknown;
    new ChunkReader((typeId, _s, _t, body) => {
      types.push(typeId);
      if (typeId === MessageType.commandAmf0) result = parseCommand(typeId, body);
    }).push(received().subarray(before));
    expect(types.slice(0, 4)).toEqual([
      MessageType.windowAckSize,
      MessageType.setPeerBandwidth,
      MessageType.setChunkSize,
      MessageType.commandAmf0,
    ]);
    expect(result).toMatchObject({
      name: '_result',
      transactionId: 1,
      object: { fmsVer: 'FMS/3,5,3,888' },
      args: [{ code: 'NetConnection.Connect.Success' }],
    });
    socket.destroy();
  });

  it('acknowledges once the received bytes cross the window, and answers pings', async () => {
    const { server } = await startTestRtmpServer();
    const { socket, received } = await rawSession(server.address().port);
    const start = received().length;
    socket.write(serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, { app: 'live' }), 128));
    socket.write(serializeMessage(2, MessageType.userControl, 0, 0, Buffer.from([0, 6, 0, 0, 0x12, 0x34]), 128));
    // 3 MB of audio messages outside any publish: ignored, but counted toward the window.
    const filler = serializeMessage(4, MessageType.audio, 1, 0, Buffer.alloc(100), 128);
    socket.write(Buffer.concat(Array.from({ length: 30_000 }, () => filler)));
    const acks: number[] = [];
    const pongs: number[] = [];
    await until(() => {
      acks.length = 0;
      pongs.length = 0;
      new ChunkReader((typeId, _s, _t, body) => {
        if (typeId === MessageType.acknowledgement) acks.push(body.readUInt32BE(0));
        if (typeId === MessageType.userControl && body.readUInt16BE(0) === 7) pongs.push(body.readUInt32BE(2));
      }).push(received().subarray(start));
      return acks.length > 0;
    });
    expect(acks[0]!).toBeGreaterThanOrEqual(2_500_000);
    expect(pongs).toEqual([0x1234]);
    socket.destroy();
  });
});

describe('acknowledgements', () => {
  it('acknowledges every window the client names, once per window, not at every read past the first', async () => {
    const { server } = await startTestRtmpServer();
    const { socket, received } = await rawSession(server.address().port);
    const start = received().length;
    socket.write(windowAckSize(1_000_000));
    socket.write(serializeMessage(3, MessageType.commandAmf0, 0, 0, encodeAmf0('connect', 1, { app: 'live' }), 128));
    // 3.3 MB of audio messages outside any publish: ignored, but counted toward the window.
    const filler = serializeMessage(4, MessageType.audio, 1, 0, Buffer.alloc(100), 128);
    socket.write(Buffer.concat(Array.from({ length: 30_000 }, () => filler)));
    const acks: number[] = [];
    await until(() => {
      acks.length = 0;
      new ChunkReader((typeId, _s, _t, body) => {
        if (typeId === MessageType.acknowledgement) acks.push(body.readUInt32BE(0));
      }).push(received().subarray(start));
      return acks.length >= 3;
    });
    // Each when a read crosses the window: a read takes at most 64 KiB past it.
    expect(acks[0]).toBeGreaterThanOrEqual(1_000_000);
    expect(acks[0]).toBeLessThan(2_000_000);
    for (let i = 1; i < acks.length; i++) expect(acks[i]! - acks[i - 1]!).toBeGreaterThanOrEqual(1_000_000);
    socket.destroy();
  });
});

describe('pause', () => {
  it('resumes a paused player at a keyframe, not at the next frame', async () => {
    const { url } = await startTestRtmpServer();
    const publisher = await testClient(url('resume'));
    await publisher.publish();
    publishCaptured(publisher);
    const player = await testClient(url('resume'));
    const statuses: string[] = [];
    player.on('status', (info) => statuses.push(String(info.code)));
    await player.play();
    await pauseAndUnpause(player, statuses);
    // Video frames after the unpause, sequence headers aside (AVCPacketType 0).
    const frames: Buffer[] = [];
    player.on('media', (kind, _t, body) => void (kind === 'video' && body[1] !== 0 && frames.push(body)));
    // The publisher goes on mid-GOP (inter frames first), then from a keyframe.
    const media = capturedMedia();
    const firstInter = media.findIndex((m) => m.kind === 'video' && m.body[0]! >> 4 !== 1);
    for (const m of [...media.slice(firstInter), ...media]) sendMedia(publisher, m);
    await until(() => frames.length > 0);
    // FLV FrameType 1: a keyframe.
    expect(frames[0]![0]! >> 4).toBe(1);
  });
});

describe('end of a stream', () => {
  it('tells a player its stream ended: StreamEOF, then Play.UnpublishNotify and Play.Stop', async () => {
    const { server, url } = await startTestRtmpServer();
    const publisher = await testClient(url('eof'));
    await publisher.publish();
    const { socket, received } = await rawSession(server.address().port);
    const start = received().length;
    const command = (csid: number, streamId: number, name: string, ...args: Parameters<typeof encodeAmf0>) =>
      socket.write(serializeMessage(csid, MessageType.commandAmf0, streamId, 0, encodeAmf0(name, ...args), 128));
    command(3, 0, 'connect', 1, { app: 'live' });
    command(3, 0, 'createStream', 2, null);
    command(8, 1, 'play', 3, null, 'eof', -2);
    // StreamEOF (User Control event 1) and the onStatus codes, in the order sent.
    const heard = () => {
      const events: string[] = [];
      new ChunkReader((typeId, _s, _t, body) => {
        if (typeId === MessageType.userControl && body.readUInt16BE(0) === 1) events.push(`StreamEOF ${body.readUInt32BE(2)}`);
        if (typeId !== MessageType.commandAmf0) return;
        const info = parseCommand(typeId, body).args.find((a) => typeof a === 'object' && a !== null && 'code' in a);
        if (info) events.push(String((info as { code: unknown }).code));
      }).push(received().subarray(start));
      return events;
    };
    await until(() => heard().includes('NetStream.Play.Start'));
    await publisher.unpublish();
    await until(() => heard().includes('NetStream.Play.Stop'));
    const events = heard();
    expect(events.slice(events.indexOf('NetStream.Play.Start') + 1)).toEqual([
      'StreamEOF 1',
      'NetStream.Play.UnpublishNotify',
      'NetStream.Play.Stop',
    ]);
    socket.destroy();
  });

  it('closes a publisher whose stream has a subscriber that throws as the stream ends: counted as internal, the others closed, the server up', async () => {
    const { hub, stats, server, url } = await startTestRtmpServer();
    const bystander = new FakeSubscriber('rtmp');
    const faulty = new FakeSubscriber('recorder');
    faulty.close = () => {
      throw new RangeError('a bug in a subscriber');
    };
    const unpublished: string[] = [];
    hub.on('publish', (stream) => {
      stream.subscribe(faulty, performance.now());
      stream.subscribe(bystander, performance.now());
    });
    hub.on('unpublish', (stream) => unpublished.push(stream.id));
    const publisher = await testClient(url('faulty'));
    await publisher.publish();
    // Before, the throw left the socket's close handler: an uncaught exception, and rtmpd exited
    // (a fuzzed publisher did it through the fMP4 writer).
    publisher.destroy();
    await until(() => server.connections === 0);
    expect(bystander.closed).toEqual(['unpublished']);
    expect(unpublished).toEqual(['rtmp/live/faulty']);
    expect(stats.protocols.rtmp.protocolErrors.internal).toBe(1);
  });
});
