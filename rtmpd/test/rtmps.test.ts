// RTMPS with real clients: ffmpeg publishes over TLS and ffprobe, GStreamer
// and rtmpdump (librtmp) play it back over RTMPS and plain RTMP; the
// certificate is renewed under a live publisher the way a mounted Secret is;
// a handshake that stalls and plain RTMP sent to the TLS port are closed and
// counted while the server goes on, one still running at shutdown is not
// counted; a bad certificate stops the start.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRtmpd } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { selfSigned, selfSignedBetween, type TestCertificate } from './support/certificates.ts';
import { encodeOnce, testPatternInputs } from './support/clips.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import {
  listStreams,
  metric,
  metricReaches,
  probe,
  publishTestPattern,
  runCommand,
  runFfmpeg,
  serverEntry,
  startServer,
  stopAll,
  waitForStream,
  type RunningServer,
} from './support/processes.ts';
import { eventually } from './support/wait.ts';

const root = join(tmpdir(), `rtmpd-rtmps-${process.pid}`);
/** Where the server reads tls.crt and tls.key: a `..data` symlink swapped in one rename, as the kubelet updates a Secret. */
const mount = join(root, 'mount');
let first: TestCertificate;
let second: TestCertificate;
let server: RunningServer;
let rtmpsPort: number;
let httpsPort: number;

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
const rtmpsUrl = (key: string, port = rtmpsPort) => `rtmps://127.0.0.1:${port}/live/${key}`;
/** ffmpeg publishing the test pattern over RTMPS, taking the self-signed certificate as it is (-tls_verify 0). */
const publishOverTls = (url: string, seconds: number) =>
  runFfmpeg([
    ...['-re', ...testPatternInputs('320x240'), '-t', String(seconds)],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '25', '-c:a', 'aac'],
    ...['-f', 'flv', '-tls_verify', '0', url],
  ]);

async function swapTo(certificate: TestCertificate): Promise<void> {
  await symlink(certificate.dir, join(mount, '..data_tmp'));
  await rename(join(mount, '..data_tmp'), join(mount, '..data'));
}

async function startTlsServer(flags: string[] = []): Promise<{ server: RunningServer; rtmpsPort: number; httpsPort: number }> {
  const started = await startServer([
    ...['--rtmps-bind', '127.0.0.1:0', '--tls-cert-file', join(mount, 'tls.crt'), '--tls-key-file', join(mount, 'tls.key')],
    ...['--recording-enabled', 'false', ...flags],
  ]);
  const ready = started.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string; https?: string };
  return { server: started, rtmpsPort: portOf(ready.rtmps), httpsPort: ready.https ? portOf(ready.https) : 0 };
}

/** A GET over HTTPS that takes the self-signed certificate as it is. */
function httpsGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** The fingerprint of the certificate a new TLS connection to the RTMPS port is given. */
function presentedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: rtmpsPort, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  await rm(root, { recursive: true, force: true });
  await mkdir(mount, { recursive: true });
  [first, second] = await Promise.all([selfSigned(join(root, 'first'), 'first'), selfSigned(join(root, 'second'), 'second')]);
  await symlink(first.dir, join(mount, '..data'));
  await symlink(join('..data', 'tls.crt'), join(mount, 'tls.crt'));
  await symlink(join('..data', 'tls.key'), join(mount, 'tls.key'));
  ({ server, rtmpsPort, httpsPort } = await startTlsServer(['--https-bind', '127.0.0.1:0', '--tls-handshake-timeout-seconds', '2']));
});

afterAll(async () => {
  await server?.stop();
  stopAll();
  await rm(root, { recursive: true, force: true });
});

describe('RTMPS', () => {
  it('takes an ffmpeg publisher over TLS and plays it over RTMPS (ffprobe, GStreamer) and plain RTMP', async () => {
    const publisher = publishOverTls(rtmpsUrl('ffmpeg'), 30);
    const stream = await waitForStream(server, 'rtmp/live/ffmpeg');
    expect(stream.video).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    // Counted under its own protocol, apart from plain RTMP.
    expect(await metric(server, 'rtmpd_connections', 'protocol="rtmps",state="publishing"')).toBe(1);
    expect(await metric(server, 'rtmpd_connections', 'protocol="rtmp",state="publishing"')).toBe(0);
    expect(await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmps"')).toBe(1);
    expect(await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"')).toBe(0);
    const expected = [
      expect.objectContaining({ codec_name: 'h264', width: 320, height: 240 }),
      expect.objectContaining({ codec_name: 'aac' }),
    ];
    expect(await probe(rtmpsUrl('ffmpeg'))).toEqual(expect.arrayContaining(expected));
    expect(await probe(server.rtmpUrl('live', 'ffmpeg'))).toEqual(expect.arrayContaining(expected));
    const gst = await runCommand(
      'gst-launch-1.0',
      ['-q', 'rtmp2src', `location=${rtmpsUrl('ffmpeg')}`, 'tls-validation-flags=0', '!', 'flvdemux', '!', 'fakesink', 'num-buffers=50'],
      30_000,
    );
    expect(gst).toMatchObject({ code: 0 });
    // The same stream over HTTPS: HTTP-FLV to ffprobe, the API to Node.
    expect(await probe(`https://127.0.0.1:${httpsPort}/live/ffmpeg.flv`)).toEqual(expect.arrayContaining(expected));
    const api = await httpsGet('/api/v1/rtmp/streams');
    expect(api.status).toBe(200);
    expect(JSON.parse(api.body)).toMatchObject({
      streams: expect.arrayContaining([expect.objectContaining({ stream_id: 'rtmp/live/ffmpeg' })]),
    });
    expect(await metric(server, 'rtmpd_tls_handshakes_total', 'listener="https"')).toBeGreaterThanOrEqual(2);
    expect(await metric(server, 'rtmpd_tls_handshakes_total', 'listener="rtmps"')).toBeGreaterThanOrEqual(3);
    // ffmpeg, ffprobe and GStreamer over RTMPS; ffprobe over plain RTMP.
    expect(await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmps"')).toBe(3);
    expect(await metric(server, 'rtmpd_connections_accepted_total', 'protocol="rtmp"')).toBe(1);
    const received = (protocol: string) => metric(server, 'rtmpd_rtmp_received_bytes_total', `protocol="${protocol}"`);
    expect(await received('rtmps')).toBeGreaterThan(100 * (await received('rtmp')));
    publisher.child.kill('SIGINT');
    await publisher.exited;
  });

  it('shows publishers and RTMP players over TLS as rtmps and plain ones as rtmp, in the API and the metrics', async () => {
    const secure = publishOverTls(rtmpsUrl('secure'), 30);
    const plain = publishTestPattern(server.rtmpUrl('live', 'plain'), { seconds: 30, size: '320x240' });
    expect((await waitForStream(server, 'rtmp/live/secure')).publisher.protocol).toBe('rtmps');
    expect((await waitForStream(server, 'rtmp/live/plain')).publisher.protocol).toBe('rtmp');
    // Polled: the previous test's publisher may still be ending.
    await expect.poll(() => metric(server, 'rtmpd_publishers', 'protocol="rtmps"')).toBe(1);
    await expect.poll(() => metric(server, 'rtmpd_publishers', 'protocol="rtmp"')).toBe(1);
    // Two ffmpeg players of the RTMPS publisher, one over each listener: each counted under its own.
    const players = [
      runFfmpeg(['-tls_verify', '0', '-i', rtmpsUrl('secure'), '-c', 'copy', '-f', 'null', '-']),
      runFfmpeg(['-i', server.rtmpUrl('live', 'secure'), '-c', 'copy', '-f', 'null', '-']),
    ];
    await expect.poll(() => metric(server, 'rtmpd_players', 'protocol="rtmps"'), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => metric(server, 'rtmpd_players', 'protocol="rtmp"'), { timeout: 10_000 }).toBe(1);
    // The API's players.rtmp counts RTMP players over both listeners.
    const shown = (await listStreams(server)).find((s) => s.stream_id === 'rtmp/live/secure');
    expect(shown?.players).toMatchObject({ rtmp: 2, total: 2 });
    for (const child of [...players, secure, plain]) child.child.kill('SIGINT');
    await Promise.all([...players, secure, plain].map((child) => child.exited));
  });

  it('takes a GStreamer rtmp2sink publisher over TLS', async () => {
    // Remuxed, not re-encoded (this GStreamer has no H.264 encoder); rtmp2sink paces it as a live encoder would send it.
    const clip = await encodeOnce('gstreamer-320x240-4s.flv', [
      ...testPatternInputs('320x240'),
      ...['-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac', '-f', 'flv'],
    ]);
    const publisher = runCommand(
      'gst-launch-1.0',
      [
        ...['-q', 'filesrc', `location=${clip}`, '!', 'flvdemux', 'name=demux'],
        ...['demux.video', '!', 'queue', '!', 'h264parse', '!', 'flvmux', 'name=mux', 'streamable=true'],
        ...['!', 'rtmp2sink', `location=${rtmpsUrl('gstreamer')}`, 'tls-validation-flags=0'],
        ...['demux.audio', '!', 'queue', '!', 'aacparse', '!', 'mux.'],
      ],
      30_000,
    );
    const stream = await waitForStream(server, 'rtmp/live/gstreamer');
    expect(stream.video).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    expect(await publisher).toMatchObject({ code: 0 });
  });

  it('serves a renewed certificate to new connections while a live publisher goes on', async () => {
    expect(await presentedFingerprint()).toBe(first.fingerprint);
    const publisher = publishOverTls(rtmpsUrl('renewal'), 60);
    await waitForStream(server, 'rtmp/live/renewal');
    await swapTo(second);
    await metricReaches(server, 'rtmpd_tls_certificate_reloads_total', 'result="ok"', 1);
    expect(await presentedFingerprint()).toBe(second.fingerprint);
    // The publisher's connection kept the old certificate and keeps sending.
    const bytesAt = async () => (await listStreams(server)).find((s) => s.stream_id === 'rtmp/live/renewal')?.bytes_in ?? 0;
    const before = await bytesAt();
    const deadline = Date.now() + 10_000;
    while ((await bytesAt()) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await bytesAt()).toBeGreaterThan(before);
    expect(publisher.child.exitCode).toBeNull();
    // A bad pair is refused and counted; the renewed one stays.
    await swapTo({ ...first, dir: join(root, 'nowhere') });
    await metricReaches(server, 'rtmpd_tls_certificate_reloads_total', 'result="error"', 1);
    expect(await presentedFingerprint()).toBe(second.fingerprint);
    publisher.child.kill('SIGINT');
    await publisher.exited;
    await swapTo(first);
  });
});

describe('a certificate near or past its notAfter', () => {
  const series = 'rtmpd_tls_certificate_expiration_timestamp_seconds';
  const notAfter = (c: TestCertificate) => Date.parse(new X509Certificate(readFileSync(c.certFile)).validTo) / 1000;
  const warned = (fingerprint: string, message: string) =>
    server.logs.some((l) => l.level === 40 && l.fingerprint === fingerprint && l.msg === message);
  /** How a client that checks the certificate (trusting it as its own CA) ends its handshake with the RTMPS port. */
  const verifiedHandshake = (ca: TestCertificate) =>
    new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: rtmpsPort, ca: readFileSync(ca.certFile) }, () => {
        resolve('secured');
        socket.destroy();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });

  it('warns at start of one that expires within 14 days, and exports its notAfter per TLS listener', async () => {
    expect(warned(first.fingerprint, 'tls: certificate expires in less than a day; renew it')).toBe(true);
    for (const listener of ['rtmps', 'https']) expect(await metric(server, series, `listener="${listener}"`)).toBe(notAfter(first));
  });

  it('serves an expired one all the same, with a warning at reload: only clients that check dates refuse it', async () => {
    const day = 24 * 3600_000;
    const expired = await selfSignedBetween(join(root, 'expired'), new Date(Date.now() - 3 * day), new Date(Date.now() - day), 'expired');
    await swapTo(expired);
    await eventually(
      'the expired notAfter exported',
      async () => (await metric(server, series, 'listener="rtmps"')) === notAfter(expired),
      15_000,
    );
    for (const listener of ['rtmps', 'https']) expect(await metric(server, series, `listener="${listener}"`)).toBe(notAfter(expired));
    expect(await presentedFingerprint()).toBe(expired.fingerprint);
    expect(await verifiedHandshake(expired)).toBe('CERT_HAS_EXPIRED');
    expect(warned(expired.fingerprint, 'tls: certificate expired; it is still served, and clients that check dates refuse it')).toBe(true);
    await swapTo(first);
  });
});

describe('an RTMPS client as the auth callback and the logs see it', () => {
  it('tells the callback protocol rtmp with tls true over RTMPS and HTTPS (false over RTMP and HTTP), and logs rtmps', async () => {
    const told: Record<string, unknown>[] = [];
    const callback = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        told.push(JSON.parse(body) as Record<string, unknown>);
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/auth`;
    const rules = [{ app: 'hook', method: 'callback', url, cacheSeconds: 0 }];
    const guarded = await startTlsServer(['--https-bind', '127.0.0.1:0', '--auth-rules', JSON.stringify(rules)]);
    const hookUrl = (scheme: 'rtmps' | 'https', path: string) =>
      `${scheme}://127.0.0.1:${scheme === 'rtmps' ? guarded.rtmpsPort : guarded.httpsPort}/hook/${path}`;
    try {
      const secure = publishOverTls(hookUrl('rtmps', 'secure'), 30);
      const plain = publishTestPattern(guarded.server.rtmpUrl('hook', 'plain'), { seconds: 30, size: '320x240' });
      await waitForStream(guarded.server, 'rtmp/hook/secure');
      await waitForStream(guarded.server, 'rtmp/hook/plain');
      for (const input of [hookUrl('rtmps', 'secure'), hookUrl('https', 'secure.flv'), guarded.server.httpUrl('/hook/plain.flv')]) {
        expect(await probe(input)).toEqual(expect.arrayContaining([expect.objectContaining({ codec_name: 'h264' })]));
      }
      const body = (action: string, key: string, protocol: string) =>
        told.find((b) => b.action === action && b.key === key && b.protocol === protocol);
      expect(body('publish', 'secure', 'rtmp')).toMatchObject({ app: 'hook', client_ip: '127.0.0.1', tls: true });
      expect(body('publish', 'plain', 'rtmp')).toMatchObject({ tls: false });
      expect(body('play', 'secure', 'rtmp')).toMatchObject({ tls: true });
      expect(body('play', 'secure', 'http-flv')).toMatchObject({ tls: true });
      expect(body('play', 'plain', 'http-flv')).toMatchObject({ tls: false });

      const logged = (msg: string, stream: string) => guarded.server.logs.find((line) => line.msg === msg && line.stream === stream);
      await expect.poll(() => logged('rtmp play', 'rtmp/hook/secure')).toMatchObject({ protocol: 'rtmps' });
      expect(logged('rtmp publish', 'rtmp/hook/secure')).toMatchObject({
        protocol: 'rtmps',
        remote: expect.stringMatching(/^127\.0\.0\.1:/),
      });
      expect(logged('rtmp publish', 'rtmp/hook/plain')).toMatchObject({ protocol: 'rtmp' });
      for (const publisher of [secure, plain]) publisher.child.kill('SIGINT');
      await Promise.all([secure.exited, plain.exited]);
      await expect.poll(() => logged('rtmp unpublish', 'rtmp/hook/secure')).toMatchObject({ protocol: 'rtmps' });
    } finally {
      await guarded.server.stop();
      callback.closeAllConnections();
      callback.close();
    }
  });
});

describe('hostile input on the RTMPS port', () => {
  it('closes a connection that sends nothing once --tls-handshake-timeout-seconds pass', async () => {
    const before = await metric(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="timeout"');
    const started = Date.now();
    const socket = netConnect({ host: '127.0.0.1', port: rtmpsPort });
    await new Promise((resolve) => socket.once('close', resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    await metricReaches(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="timeout"', before + 1);
  });

  it('refuses plain RTMP on the TLS port with a log line and a count, and goes on serving', async () => {
    const before = await metric(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="not_tls"');
    await expect(RtmpClient.connect(`rtmp://127.0.0.1:${rtmpsPort}/live/plain`, { timeoutMs: 5000 })).rejects.toThrow();
    await metricReaches(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="not_tls"', before + 1);
    expect(server.logs).toContainEqual(
      expect.objectContaining({
        msg: expect.stringContaining('plain RTMP or HTTP sent to a TLS port'),
        reason: 'not_tls',
        listener: 'rtmps',
      }),
    );
    expect(server.child.exitCode).toBeNull();
    expect(await presentedFingerprint()).toMatch(/^[0-9A-F:]+$/);
  });

  it('refuses a client that offers only TLS 1.1, and counts it', async () => {
    const before = await metric(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="protocol_version"');
    // SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.1 otherwise.
    const client = await runCommand('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${rtmpsPort}`,
      '-tls1_1',
      '-cipher',
      'DEFAULT@SECLEVEL=0',
    ]);
    expect(client.stdout + client.stderr).toContain('alert protocol version');
    await metricReaches(server, 'rtmpd_tls_handshake_failures_total', 'listener="rtmps",reason="protocol_version"', before + 1);
  });

  it('counts handshakes in progress against --max-connections, on both ports', async () => {
    const small = await startTlsServer(['--max-connections', '2']);
    try {
      const idle = await Promise.all(
        [0, 1].map(
          () =>
            new Promise<Socket>((resolve) => {
              const socket = netConnect({ host: '127.0.0.1', port: small.rtmpsPort }, () => resolve(socket));
            }),
        ),
      );
      const closedAt = (port: number) =>
        new Promise<void>((resolve) =>
          netConnect({ host: '127.0.0.1', port })
            .on('error', resolve)
            .once('close', () => resolve()),
        );
      // Two handshakes sit unfinished: the third connection, to either port, is closed at accept.
      await closedAt(small.rtmpsPort);
      await closedAt(small.server.rtmpPort);
      const text = await (await fetch(small.server.httpUrl('/metrics'))).text();
      expect(text).toContain('rtmpd_connections_refused_total{protocol="rtmp",reason="max_connections"} 1');
      expect(text).toContain('rtmpd_connections_refused_total{protocol="rtmps",reason="max_connections"} 1');
      for (const socket of idle) socket.destroy();
    } finally {
      await small.server.stop();
    }
  });

  it('refuses plain HTTP on the HTTPS port, and goes on serving HTTPS', async () => {
    const before = await metric(server, 'rtmpd_tls_handshake_failures_total', 'listener="https",reason="not_tls"');
    await expect(fetch(`http://127.0.0.1:${httpsPort}/api/v1/rtmp/streams`)).rejects.toThrow();
    await metricReaches(server, 'rtmpd_tls_handshake_failures_total', 'listener="https",reason="not_tls"', before + 1);
    expect((await httpsGet('/api/v1/rtmp/streams')).status).toBe(200);
  });
});

describe('shutdown', () => {
  it('closes the handshakes still in progress without counting or logging them as failures; a client that hung up is counted', async () => {
    // In this process, so the counters can be read once it has stopped (a stopped rtmpd serves no /metrics).
    const lines: { msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) }),
    );
    const { config } = loadConfig([
      ...['--rtmp-bind', '127.0.0.1:0', '--rtmps-bind', '127.0.0.1:0', '--http-bind', '127.0.0.1:0'],
      ...['--tls-cert-file', first.certFile, '--tls-key-file', first.keyFile, '--recording-enabled', 'false'],
      ...['--storage-dir', join(root, 'shutdown', 'storage'), '--keyframe-dir', join(root, 'shutdown', 'keyframes')],
    ]);
    const rtmpd = await startRtmpd(config, logger);
    const metrics = async (name: string) => {
      const samples = (await rtmpd.metrics.scrape())
        .toString()
        .split('\n')
        .filter((l) => l.startsWith(name));
      return samples.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    const connect = () => netConnect({ host: '127.0.0.1', port: rtmpd.rtmpsAddress!.port }).on('error', () => undefined);
    const aborted = 'rtmpd_tls_handshake_failures_total{listener="rtmps",reason="aborted"}';
    const quitter = connect();
    await expect.poll(() => metrics('rtmpd_connections_accepted_total{protocol="rtmps"}')).toBe(1);
    quitter.destroy();
    await expect.poll(() => metrics(aborted)).toBe(1);
    const idle = connect();
    const closed = new Promise((resolve) => idle.once('close', resolve));
    // Accepted: its handshake waits for a ClientHello that never comes.
    await expect.poll(() => metrics('rtmpd_connections_accepted_total{protocol="rtmps"}')).toBe(2);
    await rtmpd.stop();
    await closed;
    await new Promise(setImmediate);
    expect(await metrics('rtmpd_tls_handshake_failures_total')).toBe(1);
    expect(lines.filter((line) => line.msg.startsWith('tls handshake failed'))).toHaveLength(1);
  });
});

describe('librtmp', () => {
  it('plays over RTMPS with rtmpdump from a server offering TLS 1.2 (librtmp with GnuTLS hangs up on TLS 1.3)', async () => {
    const tls12 = await startTlsServer(['--tls-max-version', 'TLSv1.2']);
    try {
      const publisher = publishOverTls(rtmpsUrl('librtmp', tls12.rtmpsPort), 6);
      await waitForStream(tls12.server, 'rtmp/live/librtmp');
      const out = join(root, 'rtmpdump.flv');
      // rtmpdump records until the stream ends, a few seconds on.
      const dump = await runCommand('rtmpdump', ['-q', '--live', '-r', rtmpsUrl('librtmp', tls12.rtmpsPort), '-o', out], 30_000);
      expect(dump).toMatchObject({ code: 0 });
      expect(await probe(out)).toEqual(expect.arrayContaining([expect.objectContaining({ codec_name: 'h264', width: 320 })]));
      await publisher.exited;
    } finally {
      await tls12.server.stop();
    }
  });
});

describe('configuration', () => {
  /** Runs rtmpd until it exits; its output (JSON log lines and stderr). */
  function runRtmpd(flags: string[]): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        [serverEntry(), '--rtmp-bind', '127.0.0.1:0', '--http-bind', '127.0.0.1:0', '--rtmps-bind', '127.0.0.1:0', ...flags],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }

  it.each([
    ['no key', () => ['--tls-cert-file', first.certFile], '--rtmps-bind is set, so --tls-key-file must be too'],
    [
      'an unreadable certificate',
      () => ['--tls-cert-file', join(root, 'missing.crt'), '--tls-key-file', first.keyFile],
      'cannot read it (ENOENT)',
    ],
    [
      'a key that does not match',
      () => ['--tls-cert-file', first.certFile, '--tls-key-file', second.keyFile],
      'is not the key of the first certificate',
    ],
  ])('refuses to start with %s, saying why', async (_, flags, message) => {
    const { code, output } = await runRtmpd(flags());
    expect(code).toBe(2);
    expect(output).toContain(message);
    expect(output).not.toContain('rtmpd ready');
  });
});
