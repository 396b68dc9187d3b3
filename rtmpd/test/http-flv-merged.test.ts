// HTTP-FLV players merge their writes as RTMP players do: with
// --player-write-interval-ms and at least --player-write-interval-min-players
// on a stream, each gets the stream's tags in fewer, larger writes. Before,
// every tag was a write of its own per player (hack/bench/join-storm.ts
// profiled a storm of HTTP-FLV players at 43-45% of rtmpd's self time in
// socket writes). The minimum counts a stream's players of both protocols.
import { connect, type Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FlvDemuxer } from '../src/flv/demux.ts';
import { metric, publishTestPattern, runCommand, startServer, stopAll, tempDir } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { eventually } from './support/wait.ts';

afterAll(() => stopAll());

const PLAYERS = 10;

/** A player on a socket of its own: its socket reads (each 'data' event) and every byte of the answer, until the server closes. */
function play(port: number, path: string): { reads: () => number; answer: Promise<Buffer> } {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: rtmpd\r\nConnection: close\r\n\r\n`);
  let reads = 0;
  const parts: Buffer[] = [];
  socket.on('data', (bytes: Buffer) => {
    reads++;
    parts.push(bytes);
  });
  const answer = new Promise<Buffer>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(parts)));
  });
  return { reads: () => reads, answer };
}

/** The body of a chunked HTTP/1.1 answer, which must end with its last chunk. */
function dechunk(answer: Buffer): Buffer {
  expect(answer.toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
  const parts: Buffer[] = [];
  for (let at = answer.indexOf('\r\n\r\n') + 4; ;) {
    const line = answer.indexOf('\r\n', at);
    const size = parseInt(answer.toString('latin1', at, line), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(answer.subarray(line + 2, line + 2 + size));
    expect(answer.toString('latin1', line + 2 + size, line + 4 + size)).toBe('\r\n');
    at = line + 2 + size + 2;
  }
}

describe('HTTP-FLV players with --player-write-interval-ms', () => {
  it('get every tag in fewer writes than tags, as valid FLV that ffprobe decodes without an error', async () => {
    const server = await startServer([
      ...['--player-write-interval-ms', '200', '--player-write-interval-min-players', String(PLAYERS)],
      ...['--play-wait-seconds', '15'],
    ]);
    // The players wait for the publisher (or join its first GOP).
    const players = Array.from({ length: PLAYERS }, () => play(server.httpPort, '/live/merged.flv'));
    const ffmpeg = publishTestPattern(server.rtmpUrl('live', 'merged'), { seconds: 4, size: '320x240' });
    expect(await ffmpeg.exited).toBe(0);
    const answers = await Promise.all(players.map((player) => player.answer));
    const dir = await tempDir('rtmpd-flv-merged-');
    for (const [i, answer] of answers.entries()) {
      const body = dechunk(answer);
      const tags = new FlvDemuxer().push(body);
      // Unmerged, a player reads about a tag at a time (25 frames and 43 AAC frames a second).
      expect(players[i]!.reads()).toBeLessThan(tags.length / 4);
      expect(tags.length).toBeGreaterThan(100);
      const file = join(dir, `player-${i}.flv`);
      await writeFile(file, body);
      await expectDecodes(file);
    }
    await server.stop();
  });

  it("merges a stream's RTMP and HTTP-FLV players' writes once they reach the minimum together, though neither protocol's do", async () => {
    // Two players of each protocol, four in all.
    const server = await startServer([
      ...['--player-write-interval-ms', '200', '--player-write-interval-min-players', '4'],
      ...['--play-wait-seconds', '15'],
    ]);
    const dir = await tempDir('rtmpd-mixed-merged-');
    const url = server.rtmpUrl('live', 'mixed');
    const httpPlayers = [0, 1].map(() => play(server.httpPort, '/live/mixed.flv'));
    const rtmpPlayer = await RtmpClient.connect(url);
    let rtmpReads = 0;
    let rtmpMessages = 0;
    rtmpPlayer.socket.on('data', () => rtmpReads++);
    rtmpPlayer.on('media', () => rtmpMessages++);
    const playing = rtmpPlayer.play();
    // rtmpdump exits when the stream ends; what it saved must decode.
    const saved = join(dir, 'rtmpdump.flv');
    const rtmpdump = runCommand('rtmpdump', ['-q', '-r', url, '-o', saved], 60_000);
    await eventually(
      '2 RTMP players waiting for the publisher',
      async () => (await metric(server, 'rtmpd_connections', 'protocol="rtmp",state="waiting"')) === 2,
      15_000,
    );
    const ffmpeg = publishTestPattern(url, { seconds: 4, size: '320x240' });
    await playing;
    expect(await ffmpeg.exited).toBe(0);
    expect((await rtmpdump).code).toBe(0);
    await expectDecodes(saved);
    const answers = await Promise.all(httpPlayers.map((player) => player.answer));
    for (const [i, answer] of answers.entries()) {
      const body = dechunk(answer);
      const tags = new FlvDemuxer().push(body);
      expect(tags.length).toBeGreaterThan(100);
      expect(httpPlayers[i]!.reads()).toBeLessThan(tags.length / 4);
      const file = join(dir, `http-flv-${i}.flv`);
      await writeFile(file, body);
      await expectDecodes(file);
    }
    // Unmerged, the RTMP player too reads about a message at a time.
    expect(rtmpMessages).toBeGreaterThan(100);
    expect(rtmpReads).toBeLessThan(rtmpMessages / 4);
    rtmpPlayer.close();
    await server.stop();
  });
});

/** ffprobe decodes every frame of the file without an error. */
async function expectDecodes(file: string): Promise<void> {
  const decoded = await runCommand('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames', file]);
  expect({ code: decoded.code, stderr: decoded.stderr }).toEqual({ code: 0, stderr: '' });
}
