// The tracing helpers against a real OTLP/HTTP receiver: the SDK is started
// from OTEL_* variables exactly as rtmpd starts it, and what the exporter
// sends is decoded from protobuf.
import Router from '@koa/router';
import Koa from 'koa';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionTrace,
  koaTracing,
  RecordingTrace,
  startTracing,
  traceLogMixin,
  traceSnapshot,
  type Tracing,
} from '../../rtmpd/src/telemetry/tracing.ts';
import { selfSigned } from '../../rtmpd/test/support/certificates.ts';
import { publishTestPattern, runFfmpeg, startServer, stopAll, waitForStream } from '../../rtmpd/test/support/processes.ts';
import { OtlpReceiver } from './otlp-receiver.ts';

let receiver: OtlpReceiver;
let tracing: Tracing | undefined;
const saved = { ...process.env };

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
  delete process.env.OTEL_SERVICE_NAME;
  tracing = await startTracing();
});
afterAll(async () => {
  stopAll();
  await tracing?.shutdown();
  await receiver.close();
  process.env = saved;
});

const stream = {
  app: 'live',
  key: 'cam1',
  videoTrack: { codec: 'h264', width: 1280, height: 720 },
  audioTrack: { codec: 'aac', sampleRate: 44100, channels: 2 },
};

describe('tracing over OTLP/HTTP protobuf', () => {
  it('starts from OTEL_EXPORTER_OTLP_ENDPOINT and exports a connection with its publish span', async () => {
    expect(tracing).toBeDefined();
    const connection = new ConnectionTrace({ remoteAddress: '10.0.0.7', remotePort: 50123 });
    connection.connected('live', { 'rtmp.flash_version': 'FMLE/3.0' });
    connection.began('publish', 'live', 'cam1');
    connection.stream(stream);
    expect(connection.logFields().trace_id).toMatch(/^[0-9a-f]{32}$/);
    connection.close({ bytesIn: 123456, bytesOut: 789 });

    const publish = await receiver.waitFor((s) => s.name === 'rtmp.publish');
    const root = await receiver.waitFor((s) => s.name === 'rtmp.connection');
    expect(publish.contentType).toBe('application/x-protobuf');
    expect(receiver.requests.every((r) => r.path === '/v1/traces')).toBe(true);
    expect(publish.parentSpanId).toBe(root.spanId);
    expect(publish.traceId).toBe(root.traceId);
    expect(publish.attributes).toMatchObject({
      'rtmp.app': 'live',
      'rtmp.stream_key': 'cam1',
      'rtmp.video.codec': 'h264',
      'rtmp.video.width': 1280,
      'rtmp.audio.codec': 'aac',
      'rtmp.bytes_received': 123456,
      'rtmp.bytes_sent': 789,
    });
    expect(root.attributes).toMatchObject({ 'network.peer.address': '10.0.0.7', 'rtmp.role': 'publish', 'rtmp.flash_version': 'FMLE/3.0' });
    expect(root.kind).toBe(2); // SPAN_KIND_SERVER
    expect(root.resource['service.name']).toBe('rtmpd');
    expect(root.scope).toBe('rtmpd');
    // Each span anchors its own clock, so allow a millisecond of skew.
    expect(root.endNs + 1_000_000n).toBeGreaterThanOrEqual(publish.endNs);
  });

  it('exports snapshot spans (failed ones with error status) and recording segment spans', async () => {
    let logged: object = {};
    await traceSnapshot(stream, async () => {
      logged = traceLogMixin();
    });
    await expect(
      traceSnapshot({ app: 'live', key: 'broken' }, () => Promise.reject(new Error('ffmpeg produced no image'))),
    ).rejects.toThrow();
    const recording = new RecordingTrace(stream, '/data/live/cam1/x.flv');
    recording.end(stream, 4096);

    const ok = await receiver.waitFor((s) => s.name === 'snapshot' && s.attributes['rtmp.stream_key'] === 'cam1');
    expect(logged).toEqual({ trace_id: ok.traceId, span_id: ok.spanId });
    const failed = await receiver.waitFor((s) => s.name === 'snapshot' && s.attributes['rtmp.stream_key'] === 'broken');
    expect(failed.status).toEqual({ code: 2, message: 'ffmpeg produced no image' });
    expect(failed.events).toContain('exception');
    const segment = await receiver.waitFor((s) => s.name === 'recording.segment');
    expect(segment.attributes).toMatchObject({
      'file.path': '/data/live/cam1/x.flv',
      'recording.bytes_written': 4096,
      'rtmp.video.codec': 'h264',
    });
  });

  it("traces each API request by route, continuing the caller's traceparent", async () => {
    const app = new Koa();
    const router = new Router();
    router.get('/api/streams/:id', (ctx) => {
      ctx.body = { logged: traceLogMixin() };
    });
    app.use(koaTracing());
    app.use(router.routes());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const res = await fetch(`http://127.0.0.1:${port}/api/streams/abc`, {
        headers: { traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
      });
      const body = (await res.json()) as { logged: { trace_id: string } };
      expect(body.logged.trace_id).toBe(callerTrace);
      await fetch(`http://127.0.0.1:${port}/nothing`);
    } finally {
      server.close();
    }
    const span = await receiver.waitFor((s) => s.name === 'GET /api/streams/:id');
    expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span.parentSpanId).toBe('00f067aa0ba902b7');
    expect(span.attributes).toMatchObject({
      'http.route': '/api/streams/:id',
      'http.response.status_code': 200,
      'http.request.method': 'GET',
    });
    const missing = await receiver.waitFor((s) => s.name === 'GET' && s.attributes['url.path'] === '/nothing');
    expect(missing.attributes['http.response.status_code']).toBe(404);
  });
});

describe('rtmpd tracing its RTMP and RTMPS connections', () => {
  it('marks a connection over TLS with the tls.* attributes, rtmp its network.protocol.name either way', async () => {
    // The rtmpd process inherits OTEL_EXPORTER_OTLP_ENDPOINT from this one.
    const dir = join(tmpdir(), `rtmpd-tracing-${process.pid}`);
    const certificate = await selfSigned(dir);
    const server = await startServer([
      ...['--rtmps-bind', '127.0.0.1:0', '--tls-cert-file', certificate.certFile, '--tls-key-file', certificate.keyFile],
      ...['--recording-enabled', 'false'],
    ]);
    try {
      const ready = server.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string };
      const secure = runFfmpeg([
        ...['-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '20', '-c:v', 'libx264', '-preset', 'ultrafast'],
        ...['-f', 'flv', '-tls_verify', '0', `rtmps://${ready.rtmps}/live/secure`],
      ]);
      const plain = publishTestPattern(server.rtmpUrl('live', 'plain'), { seconds: 20, size: '160x120' });
      await waitForStream(server, 'rtmp/live/secure');
      await waitForStream(server, 'rtmp/live/plain');
      for (const publisher of [secure, plain]) publisher.child.kill('SIGINT');
      await Promise.all([secure.exited, plain.exited]);

      const connection = (key: string) => receiver.waitFor((s) => s.name === 'rtmp.connection' && s.attributes['rtmp.stream_key'] === key);
      const overTls = await connection('secure');
      expect(overTls.attributes).toMatchObject({
        'network.protocol.name': 'rtmp',
        'network.peer.address': '127.0.0.1',
        'tls.established': true,
        'tls.protocol.name': 'tls',
        'tls.protocol.version': '1.3',
        'tls.cipher': expect.stringMatching(/^TLS_[A-Z0-9_]+$/),
      });
      const overTcp = await connection('plain');
      expect(overTcp.attributes['network.protocol.name']).toBe('rtmp');
      expect(Object.keys(overTcp.attributes).filter((name) => name.startsWith('tls.'))).toEqual([]);
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('tracing at shutdown', () => {
  it('exports the spans still batched when rtmpd stops (SIGTERM) before it exits', async () => {
    // A batch delay far beyond the test: only the shutdown's flush can send the span.
    const server = await startServer(['--recording-enabled', 'false'], { OTEL_BSP_SCHEDULE_DELAY: '600000' });
    const publisher = publishTestPattern(server.rtmpUrl('live', 'flushed'), { seconds: 20, size: '160x120' });
    await waitForStream(server, 'rtmp/live/flushed');
    publisher.child.kill('SIGINT');
    await publisher.exited;
    expect(await server.stop()).toBe(0);
    const span = await receiver.waitFor((s) => s.name === 'rtmp.connection' && s.attributes['rtmp.stream_key'] === 'flushed', 2000);
    expect(span.attributes['rtmp.role']).toBe('publish');
  });
});
