// Webhooks against a real rtmpd, ffmpeg publishers and players, and HTTP
// receivers in the test (node:http): events in order with signatures checked
// here, independently of rtmpd's code; retries keep their webhook-id; a
// receiver that hangs or is down delays no publisher or player, its queue
// stays bounded and the drops are counted; bad options stop rtmpd at start.
import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  metric,
  probe,
  publishTestPattern,
  runCommand,
  serverEntry,
  startServer,
  stopAll,
  tempDir,
  waitForStream,
} from './support/processes.ts';
import { eventually, until } from './support/wait.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: { type: string; timestamp: string; data: Record<string, unknown> };
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** An HTTP receiver answering each request with `answer(n)` (n counts from 0); 'hang' never answers. */
async function receiver(answer: (n: number) => number | 'hang' = () => 204): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const status = answer(received.length);
      received.push({ headers: req.headers, body, event: JSON.parse(body) as Received['event'] });
      if (status !== 'hang') res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/rtmpd`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Standard Webhooks verification as a receiver writes it: HMAC-SHA256 of "id.timestamp.body" with the decoded whsec_ key. */
function verifies(secret: string, { headers, body }: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest('base64');
  return String(headers['webhook-signature'])
    .split(' ')
    .some((signature) => signature === `v1,${expected}`);
}

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TOKEN = 'webhooks-test-token';
const receivers: Receiver[] = [];
afterAll(async () => {
  stopAll();
  await Promise.all(receivers.map((r) => r.close()));
});

describe('webhooks', () => {
  it('sends stream.started, stream.ended and recording.completed in order, signed; retries keep their webhook-id; shutdown sends what it finished', async () => {
    const dir = await tempDir('rtmpd-webhooks-');
    await writeFile(join(dir, 'secret'), `${SECRET}\n`);
    await writeFile(join(dir, 'tokens'), `${TOKEN}\n`);
    const good = await receiver();
    // The flaky receiver fails its first two requests: the first event is tried three times.
    const flaky = await receiver((n) => (n < 2 ? 500 : 204));
    receivers.push(good, flaky);
    const server = await startServer([
      '--webhook-urls',
      `${good.url},${flaky.url}`,
      '--webhook-secret-file',
      join(dir, 'secret'),
      '--api-token-file',
      join(dir, 'tokens'),
      '--snapshot-enabled',
      'false',
    ]);
    const ofStream = (key: string) => good.received.filter((r) => r.event.data.key === key).map((r) => r.event);

    // A publisher that ends by itself.
    const first = publishTestPattern(server.rtmpUrl('live', 'first'), { seconds: 3 });
    expect(await first.exited).toBe(0);
    await until(() => ofStream('first').length === 3, 20_000);
    const [started, ended, completed] = ofStream('first');
    expect(started).toMatchObject({
      type: 'stream.started',
      data: { stream_id: 'rtmp/live/first', app: 'live', pod: null, publisher: { protocol: 'rtmp' }, video: { codec: 'h264' } },
    });
    expect((started!.data.audio as { codec: string }).codec).toBe('aac');
    expect(ended).toMatchObject({ type: 'stream.ended', data: { stream_id: 'rtmp/live/first', reason: 'publisher_closed' } });
    expect(ended!.data.video_frames).toBeGreaterThan(50);
    expect(ended!.data.duration_seconds).toBeGreaterThan(2);
    expect(completed).toMatchObject({ type: 'recording.completed', data: { stream_id: 'rtmp/live/first', format: 'fmp4' } });
    const file = completed!.data as { id: string; path: string; url: string; size_bytes: number; duration_seconds: number };
    expect(file.id).toBe(file.path);
    const codecs = (await probe(join(server.storageDir, file.path))).map((s) => s.codec_name).sort();
    expect(codecs).toEqual(['aac', 'h264']);
    expect(file.duration_seconds).toBeGreaterThan(2);
    const download = await fetch(server.httpUrl(file.url));
    expect((await download.arrayBuffer()).byteLength).toBe(file.size_bytes);

    // A kicked publisher.
    const second = publishTestPattern(server.rtmpUrl('live', 'second'), { seconds: 60 });
    await waitForStream(server, 'rtmp/live/second');
    const kick = await fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp/live/second'), {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(kick.status).toBe(200);
    await second.exited;
    await until(() => ofStream('second').some((e) => e.type === 'stream.ended'), 10_000);
    expect(ofStream('second').find((e) => e.type === 'stream.ended')!.data.reason).toBe('kicked');

    // Shut down while a stream is live: its end and its last file are sent before rtmpd exits.
    publishTestPattern(server.rtmpUrl('live', 'last'), { seconds: 60 });
    await until(() => ofStream('last').length === 1, 15_000);
    expect(await server.stop()).toBe(0);
    expect(ofStream('last').map((e) => [e.type, e.data.reason])).toEqual([
      ['stream.started', undefined],
      ['stream.ended', 'shutdown'],
      ['recording.completed', undefined],
    ]);

    // Every request is signed, and every event has its own webhook-id (the same at both receivers).
    expect(good.received.every((r) => verifies(SECRET, r))).toBe(true);
    expect(good.received.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
    const ids = good.received.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(ids.length);
    // Three tries of the first event at the flaky receiver, one webhook-id, each try signed for its own timestamp.
    const firstEvent = flaky.received.slice(0, 3);
    expect(firstEvent.map((r) => r.headers['webhook-id'])).toEqual([ids[0], ids[0], ids[0]]);
    expect(firstEvent.every((r) => verifies(SECRET, r))).toBe(true);
    expect(flaky.received.slice(2).map((r) => r.headers['webhook-id'])).toEqual(ids);
  });

  it('a receiver that hangs or is down delays no publisher or player; its queue stays bounded and drops are counted', async () => {
    const hanging = await receiver(() => 'hang');
    receivers.push(hanging);
    const down = await receiver();
    const downUrl = down.url;
    await down.close();
    const server = await startServer([
      '--webhook-urls',
      `${hanging.url},${downUrl}`,
      '--webhook-timeout-seconds',
      '60',
      '--webhook-queue-max-events',
      '2',
      '--shutdown-grace-seconds',
      '1',
      '--snapshot-enabled',
      'false',
      '--recording-enabled',
      'false',
    ]);
    const keys = ['a', 'b', 'c', 'd'];
    const publishers = keys.map((key) => publishTestPattern(server.rtmpUrl('live', key), { seconds: 60 }));
    await Promise.all(keys.map((key) => waitForStream(server, `rtmp/live/${key}`)));
    // A player of each stream gets its media while the hanging receiver holds the first event.
    const played = await Promise.all(keys.map((key) => probe(server.rtmpUrl('live', key))));
    for (const streams of played) expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    for (const publisher of publishers) publisher.child.kill('SIGKILL');
    await until(() => server.logs.filter((l) => l.msg === 'rtmp unpublish').length === keys.length, 15_000);
    // 8 events for each URL: one in flight at most, two waiting, the rest dropped.
    const dropped = async () =>
      (await metric(server, 'rtmpd_webhook_deliveries_total', 'event="stream.started",outcome="dropped"')) +
      (await metric(server, 'rtmpd_webhook_deliveries_total', 'event="stream.ended",outcome="dropped"'));
    await eventually('10 events dropped', async () => (await dropped()) >= 10, 10_000);
    expect(await dropped()).toBe(10);
    expect(await metric(server, 'rtmpd_webhook_queue_events')).toBeLessThanOrEqual(6);
    expect(await metric(server, 'rtmpd_webhook_deliveries_total', 'event="stream.started",outcome="delivered"')).toBe(0);
    expect(hanging.received).toHaveLength(1);
    // Shutdown gives the rest up after its grace, in one line, and exits cleanly.
    expect(await server.stop()).toBe(0);
    expect(server.logs.some((l) => l.msg === 'webhooks: events not delivered before shutdown were given up')).toBe(true);
  });

  it('refuses bad webhook options at start with a line naming the option', async () => {
    const refusals = [
      ['--webhook-urls', 'ftp://example.com/hook'],
      ['--webhook-events', 'stream.paused'],
      ['--webhook-queue-max-events', '0'],
    ] as const;
    // A secret file that cannot be read is found when the servers start, after the options were read.
    const unreadableSecret = [
      ...['--rtmp-bind', '127.0.0.1:0', '--http-bind', '127.0.0.1:0', '--webhook-urls', 'http://127.0.0.1:9/hook'],
      ...['--webhook-secret-file', '/nonexistent/webhook-secret'],
    ];
    const [secretRun, ...runs] = await Promise.all([
      runCommand(process.execPath, [serverEntry(), ...unreadableSecret]),
      ...refusals.map(([flag, value]) => runCommand(process.execPath, [serverEntry(), flag, value])),
    ]);
    runs.forEach(({ code, stderr }, i) => {
      expect(code).toBe(2);
      expect(stderr).toContain(refusals[i]![0]);
    });
    expect(secretRun!.code).toBe(2);
    expect(secretRun!.stdout).toContain('"msg":"--webhook-secret-file /nonexistent/webhook-secret: cannot read it (ENOENT)"');
  });
});

describe('webhooks at shutdown', () => {
  it('retries an event refused during the shutdown within --shutdown-grace-seconds', async () => {
    // The first stream.ended is answered 503: its retry (after about 1 s) must fit in the grace.
    const refusesFirst = await receiver((n) => (n === 0 ? 503 : 204));
    receivers.push(refusesFirst);
    const server = await startServer([
      ...['--webhook-urls', refusesFirst.url, '--webhook-events', 'stream.ended', '--shutdown-grace-seconds', '10'],
      ...['--recording-enabled', 'false', '--snapshot-enabled', 'false'],
    ]);
    const publisher = publishTestPattern(server.rtmpUrl('live', 'ending'), { seconds: 60 });
    await waitForStream(server, 'rtmp/live/ending');
    expect(await server.stop()).toBe(0);
    publisher.child.kill('SIGINT');
    expect(refusesFirst.received.map((r) => [r.event.type, r.event.data.reason])).toEqual([
      ['stream.ended', 'shutdown'],
      ['stream.ended', 'shutdown'],
    ]);
    expect(server.logs.some((l) => String(l.msg).includes('given up'))).toBe(false);
  });
});
