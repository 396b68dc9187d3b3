// Forwarding with real parts: ffmpeg publishes to rtmpd A, which publishes
// the stream on to a second rtmpd B (played back with ffprobe), to FFmpeg's
// own RTMP server (`ffmpeg -listen 1`, its file probed), to nginx-rtmp, and
// over RTMPS to B with a test certificate; Enhanced RTMP HEVC passes through. Faults: a destination down at the start, one
// killed mid-stream, one refusing the publish, one that stops reading, and
// the source unpublishing. The stream key of a destination never shows in
// A's logs or API.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkReader } from '../src/rtmp/wire/chunk-reader.ts';
import { serializeMessage } from '../src/rtmp/wire/chunk-writer.ts';
import { connectResult, onStatus, parseCommand, result } from '../src/rtmp/wire/commands.ts';
import { ServerHandshake } from '../src/rtmp/wire/handshake.ts';
import { ChunkStreamId, MessageType } from '../src/rtmp/wire/message-types.ts';
import { freePort } from '../../e2e/lib/free-port.ts';
import { selfSigned } from './support/certificates.ts';
import { enhancedHevcTags, hevcAnnexB } from './support/enhanced-hevc.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { testPatternInputs } from './support/clips.ts';
import {
  countFrames,
  listStreams,
  metric,
  probe,
  publishTestPattern,
  runFfmpeg,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
  type RunningServer,
  type StreamJson,
} from './support/processes.ts';
import { eventually, sleep } from './support/wait.ts';

afterAll(stopAll);

const quiet = ['--recording-enabled', 'false', '--snapshot-enabled', 'false'];

/** rtmpd A, forwarding by `rules`. */
const startForwarder = (rules: unknown[], flags: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  startServer([...quiet, '--forward-rules', JSON.stringify(rules), '--forward-retry-max-seconds', '4', ...flags], env);

async function streamOf(server: RunningServer, id: string): Promise<StreamJson | undefined> {
  return (await listStreams(server)).find((s) => s.stream_id === id);
}

async function forwardsOf(server: RunningServer, id: string): Promise<StreamJson['forwards']> {
  return (await streamOf(server, id))?.forwards ?? [];
}

const rssMiB = (server: RunningServer) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) / 1024;

describe('forwarding', () => {
  it('publishes to a second rtmpd and to an ffmpeg listener, the key of a URL file kept out of logs and API, and stops with the source', async () => {
    const b = await startServer(quiet);
    const listenPort = await freePort();
    const dir = await tempDir('rtmpd-forward-');
    const out = join(dir, 'out.flv');
    // FFmpeg's RTMP server: one publisher, copied to a file until it unpublishes.
    const listener = runFfmpeg(['-listen', '1', '-i', `rtmp://127.0.0.1:${listenPort}/live/x`, '-c', 'copy', '-y', out]);
    const urlFile = join(dir, 'url');
    await writeFile(urlFile, `# B, the key a secret\nrtmp://127.0.0.1:${b.rtmpPort}/in/{key}-S3CRETKEY\n`);
    const a = await startForwarder([{ app: 'live', urls: [`rtmp://127.0.0.1:${listenPort}/live/x`], urlFiles: [urlFile] }]);

    const publisher = publishTestPattern(a.rtmpUrl('live', 'cam'), { seconds: 10, size: '320x240' });
    await waitForStream(b, 'rtmp/in/cam-S3CRETKEY');
    const streams = await probe(b.rtmpUrl('in', 'cam-S3CRETKEY'));
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);

    await eventually('both forwards sending', async () => (await forwardsOf(a, 'rtmp/live/cam')).every((f) => f.state === 'sending'));
    const forwards = await forwardsOf(a, 'rtmp/live/cam');
    expect(forwards.map((f) => f.destination)).toEqual([
      `rtmp://127.0.0.1:${listenPort}/live/***`,
      `rtmp://127.0.0.1:${b.rtmpPort}/in/***`,
    ]);
    expect(forwards.every((f) => f.bytes > 0)).toBe(true);
    expect(await metric(a, 'rtmpd_stream_sent_bytes_total', 'subscriber="forward"')).toBeGreaterThan(0);
    expect(await metric(a, 'rtmpd_forwards', 'state="sending"')).toBe(2);

    expect(await publisher.exited).toBe(0);
    await eventually('B unpublished', async () => (await streamOf(b, 'rtmp/in/cam-S3CRETKEY')) === undefined);
    expect(await listener.exited).toBe(0);
    const { frames } = await countFrames(out);
    // 10 s at 25 fps, less a late start: the listener may take a retry or two to come up on a loaded machine.
    expect(frames['h264']).toBeGreaterThan(100);
    expect(frames['aac']).toBeGreaterThan(150);
    expect(a.logs.filter((line) => line.msg === 'forward: stopped')).toHaveLength(2);
    expect(JSON.stringify(a.logs)).not.toContain('S3CRETKEY');
    await Promise.all([a.stop(), b.stop()]);
  }, 90_000);

  it('retries a destination down at the start and one killed mid-stream, while the publisher and local players carry on', async () => {
    const port = await freePort();
    const a = await startForwarder([{ app: 'live', urls: [`rtmp://127.0.0.1:${port}/in/{key}`] }]);
    const publisher = publishTestPattern(a.rtmpUrl('live', 'cam2'), { seconds: 60, size: '320x240' });
    await waitForStream(a, 'rtmp/live/cam2');
    await eventually('a second attempt', async () => {
      const [forward] = await forwardsOf(a, 'rtmp/live/cam2');
      return forward !== undefined && forward.attempts >= 2 && /ECONNREFUSED/.test(forward.last_error ?? '');
    });

    const b = await startServer([...quiet, '--rtmp-bind', `127.0.0.1:${port}`]);
    expect(b.rtmpPort).toBe(port);
    await waitForStream(b, 'rtmp/in/cam2');
    b.child.kill('SIGKILL');
    await eventually('the forward noticed', async () => (await forwardsOf(a, 'rtmp/live/cam2'))[0]?.state !== 'sending');
    const before = (await streamOf(a, 'rtmp/live/cam2'))!.bytes_in;
    expect((await probe(a.rtmpUrl('live', 'cam2'))).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect((await streamOf(a, 'rtmp/live/cam2'))!.bytes_in).toBeGreaterThan(before);

    const b2 = await startServer([...quiet, '--rtmp-bind', `127.0.0.1:${port}`]);
    await waitForStream(b2, 'rtmp/in/cam2');
    expect((await forwardsOf(a, 'rtmp/live/cam2'))[0]!.state).toBe('sending');
    publisher.child.kill('SIGKILL');
    await Promise.all([a.stop(), b2.stop()]);
  }, 90_000);

  it('retries a destination that refuses the publish with backoff, not at once', async () => {
    const b = await startServer(quiet);
    const taken = publishTestPattern(b.rtmpUrl('in', 'busy'), { seconds: 30, size: '320x240' });
    await waitForStream(b, 'rtmp/in/busy');
    const a = await startForwarder(
      [{ app: 'live', urls: [`rtmp://127.0.0.1:${b.rtmpPort}/in/busy`] }],
      ['--forward-retry-max-seconds', '60'],
    );
    const publisher = publishTestPattern(a.rtmpUrl('live', 'cam3'), { seconds: 30, size: '320x240' });
    await waitForStream(a, 'rtmp/live/cam3');
    await eventually('a refusal', async () => typeof (await forwardsOf(a, 'rtmp/live/cam3'))[0]?.last_error === 'string');
    const start = Date.now();
    await sleep(6000);
    const [forward] = await forwardsOf(a, 'rtmp/live/cam3');
    // Retries after about 1, 2 and 4 s (±20%): at most three more in 6 s, where a loop would make hundreds.
    expect(forward!.attempts).toBeGreaterThanOrEqual(2);
    expect(forward!.attempts).toBeLessThanOrEqual(4);
    expect(forward!.last_error).toMatch(/^refused: NetStream\.Publish\.BadName: /);
    expect(forward!.last_error).not.toContain('busy');
    // Every attempt failed but one that may be under way.
    expect(await metric(a, 'rtmpd_forward_failures_total', 'reason="refused"')).toBeGreaterThanOrEqual(forward!.attempts - 1);
    expect(Date.now() - start).toBeLessThan(10_000);
    publisher.child.kill('SIGKILL');
    taken.child.kill('SIGKILL');
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it('skips frames for a destination that stops reading and closes it as stalled, its memory bounded and the publisher unaffected', async () => {
    const destination = await stopsReadingAfterPublish();
    const port = (destination.address() as AddressInfo).port;
    const a = await startForwarder(
      [{ app: 'live', urls: [`rtmp://127.0.0.1:${port}/in/{key}`] }],
      ['--player-max-buffer-bytes', '65536', '--player-stall-timeout-seconds', '2'],
    );
    // Noise does not compress: several MB/s, which fill the kernel's buffers within seconds.
    const publisher = runFfmpeg([
      ...['-re', ...testPatternInputs('640x360'), '-t', '60', '-vf', 'noise=alls=80:allf=t'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-f', 'flv', a.rtmpUrl('live', 'cam4')],
    ]);
    await waitForStream(a, 'rtmp/live/cam4');
    let peakRss = 0;
    await eventually(
      'the forward closed as stalled',
      async () => {
        peakRss = Math.max(peakRss, rssMiB(a));
        return /stalled/.test((await forwardsOf(a, 'rtmp/live/cam4'))[0]?.last_error ?? '');
      },
      45_000,
    );
    const stream = (await streamOf(a, 'rtmp/live/cam4'))!;
    expect(stream.dropped_frames).toBeGreaterThan(0);
    expect(peakRss).toBeLessThan(200);
    // The publisher goes on at its own pace, and a local player gets the stream.
    const before = stream.bytes_in;
    expect((await probe(a.rtmpUrl('live', 'cam4'))).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect((await streamOf(a, 'rtmp/live/cam4'))!.bytes_in).toBeGreaterThan(before);
    await eventually('a new attempt', async () => (await forwardsOf(a, 'rtmp/live/cam4'))[0]!.attempts >= 2, 15_000);
    // A failure of the forward, not a stalled player.
    expect(await metric(a, 'rtmpd_forward_failures_total', 'reason="stalled"')).toBeGreaterThanOrEqual(1);
    expect(await metric(a, 'rtmpd_players_stalled_closed_total')).toBe(0);
    publisher.child.kill('SIGKILL');
    await a.stop();
    destination.close();
  }, 120_000);

  it('publishes to nginx-rtmp, played back from it with ffprobe', async () => {
    const port = await freePort();
    const dir = await tempDir('rtmpd-forward-nginx-');
    await writeFile(
      join(dir, 'nginx.conf'),
      [
        'load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;',
        'daemon off; master_process off; worker_processes 1;',
        `pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;`,
        'events { worker_connections 64; }',
        `rtmp { server { listen 127.0.0.1:${port}; application live { live on; record off; } } }`,
      ].join('\n'),
    );
    const nginx = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    try {
      const a = await startForwarder([{ app: 'live', urls: [`rtmp://127.0.0.1:${port}/live/{key}`] }]);
      const publisher = publishTestPattern(a.rtmpUrl('live', 'cam7'), { seconds: 30, size: '320x240' });
      await eventually('sending to nginx-rtmp', async () => (await forwardsOf(a, 'rtmp/live/cam7'))[0]?.state === 'sending');
      expect((await probe(`rtmp://127.0.0.1:${port}/live/cam7`)).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      publisher.child.kill('SIGKILL');
      await a.stop();
    } finally {
      nginx.kill('SIGKILL');
    }
  }, 60_000);

  it('passes Enhanced RTMP HEVC through as the publisher sent it', async () => {
    const b = await startServer(quiet);
    const a = await startForwarder([{ app: 'live', urls: [`rtmp://127.0.0.1:${b.rtmpPort}/in/{key}`] }]);
    const tags = await enhancedHevcTags(await hevcAnnexB(640, 360, 2));
    const client = await RtmpClient.connect(a.rtmpUrl('live', 'hevc'));
    try {
      await client.publish();
      await eventually('sending to B', async () => (await forwardsOf(a, 'rtmp/live/hevc'))[0]?.state === 'sending');
      client.sendMetadata({ width: 640, height: 360, videocodecid: 'hvc1' });
      for (const tag of tags) client.sendVideo(tag.timestamp, tag.body);
      const stream = await waitForStream(b, 'rtmp/in/hevc');
      expect(stream.video).toMatchObject({ codec: 'hevc', width: 640, height: 360, fps: 25 });
      await eventually('every frame at B', async () => (await streamOf(b, 'rtmp/in/hevc'))?.video_frames === tags.length - 1);
    } finally {
      client.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);

  it('forwards over RTMPS to a destination whose certificate it trusts, and refuses one it does not', async () => {
    const dir = await tempDir('rtmpd-forward-tls-');
    const certificate = await selfSigned(dir);
    const b = await startServer([
      ...quiet,
      '--rtmps-bind',
      '127.0.0.1:0',
      '--tls-cert-file',
      certificate.certFile,
      '--tls-key-file',
      certificate.keyFile,
    ]);
    const ready = b.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string };
    const url = `rtmps://127.0.0.1:${ready.rtmps.slice(ready.rtmps.lastIndexOf(':') + 1)}/in/{key}`;
    const trusting = await startForwarder([{ app: 'live', urls: [url] }], ['--forward-tls-ca-file', certificate.certFile]);
    const untrusting = await startForwarder([{ app: 'live', urls: [url.replace('{key}', 'other')] }]);
    // The CA file adds to what Node.js trusts by default, NODE_EXTRA_CA_CERTS's certificates included.
    const otherCa = await selfSigned(join(dir, 'other'), 'another-origin');
    const trustingByEnv = await startForwarder([{ app: 'live', urls: [url] }], ['--forward-tls-ca-file', otherCa.certFile], {
      NODE_EXTRA_CA_CERTS: certificate.certFile,
    });
    const publishers = [
      publishTestPattern(trusting.rtmpUrl('live', 'cam5'), { seconds: 30, size: '320x240' }),
      publishTestPattern(untrusting.rtmpUrl('live', 'cam6'), { seconds: 30, size: '320x240' }),
      publishTestPattern(trustingByEnv.rtmpUrl('live', 'cam7'), { seconds: 30, size: '320x240' }),
    ];
    await waitForStream(b, 'rtmp/in/cam5');
    await waitForStream(b, 'rtmp/in/cam7');
    expect((await probe(b.rtmpUrl('in', 'cam5'))).map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect((await listStreams(b)).find((s) => s.stream_id === 'rtmp/in/cam5')!.publisher.protocol).toBe('rtmps');
    await eventually('the untrusted destination refused', async () =>
      /certificate/i.test((await forwardsOf(untrusting, 'rtmp/live/cam6'))[0]?.last_error ?? ''),
    );
    // It says which option fixes it, not Node's flag.
    const lastError = (await forwardsOf(untrusting, 'rtmp/live/cam6'))[0]!.last_error!;
    expect(lastError).toMatch(/^certificate not trusted: add the CA that signed it to --forward-tls-ca-file /);
    expect(lastError).not.toContain('--use-system-ca');
    expect(untrusting.logs.find((line) => line.msg === 'forward: failed; retrying')).toMatchObject({ err: lastError });
    expect(await metric(untrusting, 'rtmpd_forward_failures_total', 'reason="certificate"')).toBeGreaterThanOrEqual(1);
    expect(await streamOf(b, 'rtmp/in/other')).toBeUndefined();
    for (const publisher of publishers) publisher.child.kill('SIGKILL');
    await Promise.all([trusting.stop(), untrusting.stop(), trustingByEnv.stop(), b.stop()]);
  }, 60_000);
});

/**
 * An RTMP server that accepts a publish (connect, createStream, publish
 * answered as rtmpd answers them) and then reads no more, as a destination
 * whose network stalled.
 */
async function stopsReadingAfterPublish(): Promise<Server> {
  const server = createServer((socket: Socket) => {
    const send = (typeId: number, streamId: number, body: Buffer) =>
      socket.write(serializeMessage(ChunkStreamId.command, typeId, streamId, 0, body, 128));
    const reader = new ChunkReader((typeId, streamId, _timestamp, body) => {
      if (typeId !== MessageType.commandAmf0) return;
      const cmd = parseCommand(typeId, body);
      if (cmd.name === 'connect') send(MessageType.commandAmf0, 0, connectResult(cmd.transactionId, 0));
      else if (cmd.name === 'createStream') send(MessageType.commandAmf0, 0, result(cmd.transactionId, 1));
      else if (cmd.name === 'publish') {
        send(MessageType.commandAmf0, streamId, onStatus({ level: 'status', code: 'NetStream.Publish.Start', description: 'ok' }));
        socket.pause();
      }
    });
    const handshake = new ServerHandshake((bytes) => socket.write(bytes));
    let shaken = false;
    socket.on('data', (bytes: Buffer) => {
      const rest = shaken ? bytes : handshake.push(bytes);
      if (rest === undefined) return;
      shaken = true;
      if (rest.length > 0) reader.push(rest);
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
