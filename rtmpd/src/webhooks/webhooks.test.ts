import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { readFlvFile } from '../../test/support/flv-fixture.ts';
import { loadConfig } from '../config.ts';
import { RecordingStore } from '../http/recording-store.ts';
import { StreamHub } from '../hub/hub.ts';
import type { PublisherInfo } from '../hub/stream.ts';
import type { Send } from './delivery.ts';
import { webhookEventSchema, type WebhookEvent } from './events.ts';
import { Webhooks } from './webhooks.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const done of cleanup.splice(0)) await done();
});

const publisher = (protocol: PublisherInfo['protocol']): PublisherInfo => ({ protocol, remoteAddress: '10.0.0.7:5000', close: () => {} });

/** Webhooks on a real hub, sending into a list instead of the network. */
async function setup(argv: string[], storageDir?: string) {
  storageDir ??= await mkdtemp(join(tmpdir(), 'rtmpd-webhooks-'));
  const { config } = loadConfig(['--storage-dir', storageDir, '--webhook-urls', 'http://receiver.test/hook', ...argv], {});
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 1000 });
  const sent: WebhookEvent[] = [];
  const requests: { url: string; headers: Record<string, string>; body: string }[] = [];
  const send: Send = (url, headers, body) => {
    sent.push(webhookEventSchema.parse(JSON.parse(body)));
    requests.push({ url, headers, body });
    return Promise.resolve({ status: 204 });
  };
  const webhooks = await Webhooks.start({
    hub,
    config,
    recordings: new RecordingStore(storageDir, { filesInUse: () => new Set(), finishing: () => undefined }),
    logger: pino({ level: 'silent' }),
    send,
  });
  cleanup.push(async () => {
    await webhooks.close(0);
    hub.closeAll();
    await rm(storageDir, { recursive: true, force: true });
  });
  return { hub, webhooks, config, sent, requests, storageDir };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

describe('webhook events', () => {
  it("in a fleet, sends the events of the streams this pod owns, with its name, and none for a relayed copy of another pod's", async () => {
    const { hub, webhooks, sent, storageDir } = await setup(['--fleet-name', 'edge', '--fleet-pod-name', 'edge-0']);
    const relayed = hub.publish('live', 'elsewhere', publisher('relay'));
    hub.unpublish(relayed);
    const own = hub.publish('live', 'cam1', publisher('rtmp'));
    // Ends before its tracks are known: its start still goes first.
    hub.unpublish(own, 'claim_lost');
    const name = '2026-11-28T17-00-00.000Z.flv';
    await mkdir(join(storageDir, 'live', 'cam1'), { recursive: true });
    await writeFile(join(storageDir, 'live', 'cam1', name), Buffer.alloc(100));
    webhooks.recordingCompleted(join(storageDir, 'live', 'cam1', name));
    await until(() => sent.length === 3);
    expect(sent.map((e) => e.type)).toEqual(['stream.started', 'stream.ended', 'recording.completed']);
    expect(sent.every((e) => e.data.stream_id === 'rtmp/live/cam1' && e.data.pod === 'edge-0')).toBe(true);
    expect(sent[0]!.data).toMatchObject({ publisher: { protocol: 'rtmp', remote_address: '10.0.0.7:5000' }, video: null, audio: null });
    expect(sent[1]!.data).toMatchObject({ reason: 'claim_lost', bytes_in: 0, video_frames: 0 });
    // The recordings API's fleet id, qualified by the pod that holds the file; the path stays relative to the storage dir.
    expect(sent[2]!.data).toMatchObject({
      id: `edge-0/live/cam1/${name}`,
      path: `live/cam1/${name}`,
      url: `/api/v1/rtmp/recordings/${encodeURIComponent(`edge-0/live/cam1/${name}`)}`,
      format: 'flv',
      size_bytes: 100,
    });
  });

  it("sends stream.started as soon as the tracks are known, on the stream's own event rather than a timer", async () => {
    const { hub, sent } = await setup(['--webhook-events', 'stream.started']);
    const stream = hub.publish('live', 'cam3', publisher('rtmps'));
    const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
    const turns = async (n: number) => {
      for (let i = 0; i < n && sent.length === 0; i++) await new Promise(setImmediate);
    };
    stream.pushVideo(0, tags.find((t) => t.kind === 'video')!.body, 0);
    await turns(5);
    expect(sent).toEqual([]);
    stream.pushAudio(0, tags.find((t) => t.kind === 'audio')!.body, 0);
    // Delivery is asynchronous but waits on no timer: a few turns of the event loop bring it.
    await turns(5);
    expect(sent.map((e) => e.type)).toEqual(['stream.started']);
    expect(sent[0]!.data).toMatchObject({ publisher: { protocol: 'rtmps' }, video: { codec: 'h264' }, audio: { codec: 'aac' } });
  });

  it('sends a stream’s end only to the URLs that were sent its start: a URL added while it is live hears of the next streams', async () => {
    const { hub, webhooks, config, requests } = await setup([]);
    const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
    const live = hub.publish('live', 'before', publisher('rtmp'));
    live.pushVideo(0, tags.find((t) => t.kind === 'video')!.body, 0);
    live.pushAudio(0, tags.find((t) => t.kind === 'audio')!.body, 0);
    await until(() => requests.length === 1);
    // As a config file reload applies it: a new list in the running Config.
    config.webhookUrls = ['http://receiver.test/hook', 'http://added.test/hook'];
    const next = hub.publish('live', 'after', publisher('rtmp'));
    hub.unpublish(live);
    hub.unpublish(next);
    await webhooks.close(1000);
    const heard = (url: string) =>
      requests
        .filter((r) => r.url === url)
        .map((r) => {
          const event = webhookEventSchema.parse(JSON.parse(r.body));
          return `${event.type} ${event.data.key}`;
        });
    expect(heard('http://receiver.test/hook')).toEqual([
      'stream.started before',
      'stream.ended before',
      'stream.started after',
      'stream.ended after',
    ]);
    expect(heard('http://added.test/hook')).toEqual(['stream.started after', 'stream.ended after']);
  });

  it('without stream.started chosen, sends a stream’s end to the URLs configured when it started', async () => {
    const { hub, webhooks, config, requests } = await setup(['--webhook-events', 'stream.ended']);
    const live = hub.publish('live', 'before', publisher('rtmp'));
    config.webhookUrls = ['http://receiver.test/hook', 'http://added.test/hook'];
    hub.unpublish(live);
    hub.unpublish(hub.publish('live', 'after', publisher('rtmp')));
    await webhooks.close(1000);
    expect(requests.map((r) => `${r.url} ${(JSON.parse(r.body) as WebhookEvent).data.key}`).sort()).toEqual([
      'http://added.test/hook after',
      'http://receiver.test/hook after',
      'http://receiver.test/hook before',
    ]);
  });

  it('sends only the events --webhook-events names, and nothing for a file that is gone', async () => {
    const { hub, webhooks, sent, storageDir } = await setup(['--webhook-events', 'stream.ended']);
    hub.unpublish(hub.publish('live', 'cam2', publisher('rtmp')), 'kicked');
    webhooks.recordingCompleted(join(storageDir, 'live', 'cam2', '2026-11-28T17-00-00.000Z.mp4'));
    await webhooks.close(1000);
    expect(sent.map((e) => [e.type, e.data.stream_id])).toEqual([['stream.ended', 'rtmp/live/cam2']]);
    expect(sent[0]!.data).toMatchObject({ reason: 'kicked', pod: null });
  });

  it('signs with the key --webhook-secret-file holds now: a changed file is re-read while running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rtmpd-webhooks-'));
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, 'first-key\n');
    const { hub, sent, requests } = await setup(['--webhook-secret-file', secretFile, '--webhook-events', 'stream.ended'], dir);
    const signedWith = (key: string, i: number): boolean => {
      const { headers, body } = requests[i]!;
      const mac = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest('base64');
      return headers['webhook-signature'] === `v1,${mac}`;
    };
    hub.unpublish(hub.publish('live', 'a', publisher('rtmp')));
    await until(() => sent.length === 1);
    expect(signedWith('first-key', 0)).toBe(true);
    await writeFile(secretFile, 'second-key\n');
    // The file is polled every second: events sent after that are signed with the new key.
    for (let n = 1; n < 50 && !signedWith('second-key', n - 1); n++) {
      await new Promise((r) => setTimeout(r, 100));
      hub.unpublish(hub.publish('live', `b${n}`, publisher('rtmp')));
      await until(() => sent.length === n + 1);
    }
    expect(signedWith('second-key', sent.length - 1)).toBe(true);
  });
});

describe('stream.started', () => {
  it('waits only for the tracks onMetaData declares: a video-only stream is announced once its video is known', async () => {
    const { hub, sent } = await setup(['--webhook-events', 'stream.started']);
    const stream = hub.publish('live', 'video-only', publisher('rtmp'));
    stream.setMetadata(0, Buffer.alloc(0), { videocodecid: 7 }, 0);
    const { tags } = await readFlvFile(new URL('../flv/testdata/h264_aac.flv', import.meta.url).pathname);
    stream.pushVideo(0, tags.find((t) => t.kind === 'video')!.body, 0);
    for (let i = 0; i < 5 && sent.length === 0; i++) await new Promise(setImmediate);
    expect(sent.map((e) => e.type)).toEqual(['stream.started']);
    expect(sent[0]!.data).toMatchObject({ video: { codec: 'h264' }, audio: null });
  });
});
