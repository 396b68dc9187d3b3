// Beyond ffmpeg's own RTMP: HEVC over Enhanced RTMP from the project's client
// (ffmpeg 5.1 cannot send it), GStreamer's two RTMP implementations (its own
// rtmp2 elements and librtmp's rtmpsrc), a relay out of node-media-server
// 4.4.3, FFmpeg's digest handshake seen on the wire, and the command line
// refusing bad options.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer, connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDigest, handshakeKeys, HANDSHAKE_SIZE } from '../src/rtmp/wire/handshake.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { enhancedHevcTags, hevcAnnexB } from './support/enhanced-hevc.ts';
import { asEnhancedMp3 } from './support/enhanced-mp3.ts';
import { lavfiClip, readFlvFile } from './support/flv-fixture.ts';
import { freePort } from '../../e2e/lib/free-port.ts';
import { encodeOnce, testPatternInputs } from './support/clips.ts';
import {
  countFrames,
  listStreams,
  probe,
  publishTestPattern,
  runCommand,
  runFfmpeg,
  startServer,
  stopAll,
  tempDir,
  waitForPort,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
  stopAll();
});

describe('Enhanced RTMP HEVC from the project client', () => {
  it('is listed as hevc with its resolution and frame rate and gives a JPEG snapshot', async () => {
    const tags = await enhancedHevcTags(await hevcAnnexB(640, 360, 2));
    const client = await RtmpClient.connect(server.rtmpUrl('live', 'hevc'));
    try {
      await client.publish();
      // No framerate in the metadata: the 25 fps must come from the timing x265 writes in the SPS VUI.
      client.sendMetadata({ width: 640, height: 360, videocodecid: 'hvc1' });
      for (const tag of tags) client.sendVideo(tag.timestamp, tag.body);
      const stream = await waitForStream(server, 'rtmp/live/hevc');
      expect(stream.video).toMatchObject({ codec: 'hevc', width: 640, height: 360, fps: 25 });
      const res = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp%2Flive%2Fhevc/snapshot'));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const path = join(await tempDir('rtmpd-hevc-'), 'hevc.jpg');
      await import('node:fs/promises').then(async (fs) => fs.writeFile(path, Buffer.from(await res.arrayBuffer())));
      expect(await probe(path)).toEqual([expect.objectContaining({ codec_name: 'mjpeg', width: 640, height: 360 })]);
    } finally {
      client.close();
    }
  });
});

describe("MP3 audio, described by its frames' header", () => {
  const MP3_48K_MONO = { codec: 'mp3', sample_rate: 48_000, channels: 1 };
  // Video comes first: the audio's description is polled for, not taken with the stream.
  const listedAudio = async (id: string) => (await listStreams(server)).find((stream) => stream.stream_id === id)?.audio;

  it('from ffmpeg (libmp3lame at 48 kHz, mono, which FLV flags 44 kHz) is listed at 48 kHz, 1 channel', async () => {
    const publisher = runFfmpeg([
      '-re',
      ...testPatternInputs('320x180'),
      '-t',
      '30',
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25'],
      ...['-c:a', 'libmp3lame', '-ar', '48000', '-ac', '1'],
      ...['-f', 'flv', server.rtmpUrl('live', 'mp3')],
    ]);
    try {
      await expect.poll(() => listedAudio('rtmp/live/mp3'), { timeout: 15_000 }).toMatchObject(MP3_48K_MONO);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it("over Enhanced RTMP ('.mp3', no rate flags; ffmpeg 5.1 cannot send it: the project client re-heads ffmpeg's tags) is listed at 48 kHz, 1 channel", async () => {
    const clip = await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', 'libmp3lame', '-ar', '48000'] });
    const { tags } = await readFlvFile(clip);
    const client = await RtmpClient.connect(server.rtmpUrl('live', 'mp3x'));
    try {
      await client.publish();
      for (const tag of tags.map(asEnhancedMp3)) {
        if (tag.kind === 'video') client.sendVideo(tag.timestamp, tag.body);
        else if (tag.kind === 'audio') client.sendAudio(tag.timestamp, tag.body);
      }
      await expect.poll(() => listedAudio('rtmp/live/mp3x'), { timeout: 15_000 }).toMatchObject(MP3_48K_MONO);
    } finally {
      client.close();
    }
  });
});

describe("GStreamer's RTMP elements", () => {
  it('publishes with rtmp2sink, and plays back over rtmp2src and librtmp-based rtmpsrc', async () => {
    const clip = await encodeOnce('gstreamer-320x240-12s.flv', [
      ...testPatternInputs('320x240'),
      '-t',
      '12',
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac', '-f', 'flv'],
    ]);
    const url = server.rtmpUrl('live', 'gstreamer');
    // The clip's packets are remuxed, not re-encoded; rtmp2sink paces them by their timestamps, as a live encoder would.
    const publisher = runCommand(
      'gst-launch-1.0',
      [
        ...['-q', 'filesrc', `location=${clip}`, '!', 'flvdemux', 'name=demux'],
        ...['demux.video', '!', 'queue', '!', 'h264parse', '!', 'flvmux', 'name=mux', 'streamable=true'],
        ...['!', 'rtmp2sink', `location=${url}`],
        ...['demux.audio', '!', 'queue', '!', 'aacparse', '!', 'mux.'],
      ],
      30_000,
    );
    const stream = await waitForStream(server, 'rtmp/live/gstreamer');
    expect(stream.video).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    expect(stream.audio).toMatchObject({ codec: 'aac' });

    // Each player stops by itself after a few seconds of the stream (num-buffers), so its file ends cleanly.
    const dir = await tempDir('rtmpd-gstreamer-');
    const play = (source: string, buffers: number) => {
      const out = join(dir, `${source}.flv`);
      const run = runCommand(
        'gst-launch-1.0',
        ['-q', source, `location=${url}`, `num-buffers=${buffers}`, '!', 'filesink', `location=${out}`],
        20_000,
      );
      return run.then((result) => ({ ...result, out }));
    };
    const players = await Promise.all([play('rtmp2src', 150), play('rtmpsrc', 40)]);
    for (const player of players) {
      expect(player.code, player.stderr).toBe(0);
      const { frames } = await countFrames(player.out);
      expect(frames.h264, player.out).toBeGreaterThan(25);
      expect(frames.aac, player.out).toBeGreaterThan(25);
    }
    expect((await publisher).code).toBe(0);
  });
});

describe('node-media-server interop', () => {
  it('relays a stream pulled from node-media-server 4.4.3 into rtmpd, which plays it back', async () => {
    const nmsPort = await freePort();
    const dataDir = await tempDir('rtmpd-nms-');
    const nmsEntry = createRequire(import.meta.url).resolve('node-media-server');
    const script = `const NMS = require(${JSON.stringify(nmsEntry)}); new NMS({ bind: '127.0.0.1', rtmp: { port: ${nmsPort} }, webadmin: { enable: false }, record: { auto: false, path: ${JSON.stringify(join(dataDir, 'record'))} }, store: { path: ${JSON.stringify(join(dataDir, 'store'))} } }, ${JSON.stringify(join(dataDir, 'config.json'))}).run();`;
    const nms = spawn(process.execPath, ['-e', script], { stdio: 'ignore', cwd: dataDir });
    try {
      await waitForPort(nmsPort);
      const source = publishTestPattern(`rtmp://127.0.0.1:${nmsPort}/live/origin`, { seconds: 30 });
      await new Promise((r) => setTimeout(r, 1500));
      const relay = runFfmpeg([
        '-i',
        `rtmp://127.0.0.1:${nmsPort}/live/origin`,
        '-c',
        'copy',
        '-f',
        'flv',
        server.rtmpUrl('live', 'relayed'),
      ]);
      const stream = await waitForStream(server, 'rtmp/live/relayed', 20_000);
      expect(stream.video).toMatchObject({ codec: 'h264', width: 640, height: 360 });
      expect(await probe(server.httpUrl('/live/relayed.flv'))).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ codec_name: 'h264', width: 640, height: 360 }),
          expect.objectContaining({ codec_name: 'aac' }),
        ]),
      );
      relay.child.kill('SIGKILL');
      source.child.kill('SIGKILL');
    } finally {
      nms.kill('SIGKILL');
    }
  });
});

/** A TCP relay to rtmpd that keeps the first bytes each side sent: C0+C1 from the client, S0+S1 from the server. */
async function handshakeRecorder(upstreamPort: number): Promise<{ port: number; c1: () => Buffer; s1: () => Buffer; close: () => void }> {
  const C0C1 = 1 + HANDSHAKE_SIZE;
  let fromClient = Buffer.alloc(0);
  let fromServer = Buffer.alloc(0);
  const proxy = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    client.on('data', (d: Buffer) => (fromClient = fromClient.length < C0C1 ? Buffer.concat([fromClient, d]) : fromClient));
    upstream.on('data', (d: Buffer) => (fromServer = fromServer.length < C0C1 ? Buffer.concat([fromServer, d]) : fromServer));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
  return {
    port: (proxy.address() as AddressInfo).port,
    c1: () => fromClient.subarray(1, C0C1),
    s1: () => fromServer.subarray(1, C0C1),
    close: () => proxy.close(),
  };
}

describe("FFmpeg's handshake", () => {
  it('is the digest handshake: rtmpd finds the digest FFmpeg signs C1 with and answers with a signed S1, which FFmpeg checks as a player', async () => {
    const publisher = publishTestPattern(server.rtmpUrl('live', 'handshake'), { size: '160x120' });
    const proxy = await handshakeRecorder(server.rtmpPort);
    try {
      await waitForStream(server, 'rtmp/live/handshake');
      // FFmpeg as a player refuses an S1 with a version whose digest or S2 signature it cannot verify
      // ("Server response validating failed", "Signature mismatch"), so its play is the check from the other side.
      const player = await runCommand('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        `rtmp://127.0.0.1:${proxy.port}/live/handshake`,
        '-frames:v',
        '5',
        '-f',
        'null',
        '-',
      ]);
      expect(player.code, player.stderr).toBe(0);
      expect(findDigest(proxy.c1(), handshakeKeys.FP_KEY_PART)?.schema).toBe(1);
      expect(proxy.s1().readUInt32BE(4)).not.toBe(0);
      expect(findDigest(proxy.s1(), handshakeKeys.FMS_KEY_PART)?.schema).toBe(1);
    } finally {
      proxy.close();
      publisher.quit();
    }
  });
});

describe('the command line', () => {
  const cli = (args: string[]) => runCommand(process.execPath, [join(import.meta.dirname, '../src/main.ts'), ...args]);

  it('refuses a bad flag value and options that contradict each other at start, naming the options', async () => {
    const { code, stderr } = await cli(['--rtmp-bind', 'nonsense']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--rtmp-bind \(RTMPD_RTMP_BIND\): expected HOST:PORT/);
    const unknown = await cli(['--no-such-flag', '1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no-such-flag/);
    const contradicting = await cli(['--idle-timeout-seconds', '1', '--auth-rules', '[{"method":"callback","url":"http://127.0.0.1:9/"}]']);
    expect(contradicting.code).toBe(2);
    expect(contradicting.stderr).toMatch(/timeoutMs 2000 must be less than --idle-timeout-seconds 1 /);
  });

  it('documents every option in --help and prints its version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--rtmp-bind', '--http-bind', '--storage-dir', '--keyframe-dir', '--play-wait-seconds', '--snapshot-width'])
      expect(help.stdout).toContain(flag);
    expect((await cli(['--version'])).stdout).toMatch(/^rtmpd \d+\.\d+\.\d+/);
  });
});
