// The admission step with fake checks, through the real server and client:
// what a check answers is what the client hears, and nothing reaches the hub
// before a check allowed it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { publishRequest } from '../../../test/support/admission-request.ts';
import { startTestRtmpServer, testClient } from '../../../test/support/rtmp-server.ts';
import { sleep, until } from '../../../test/support/wait.ts';
import { ChunkReader } from '../wire/chunk-reader.ts';
import { MessageType } from '../wire/message-types.ts';
import { admit, type AdmissionCheck, type AdmissionRequest } from './admission.ts';

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;

/** The first video messages of the FFmpeg capture: the AVC sequence header and the first keyframe. */
function firstVideo(): { timestamp: number; body: Buffer }[] {
  const video: { timestamp: number; body: Buffer }[] = [];
  new ChunkReader((typeId, _s, timestamp, body) => {
    if (typeId === MessageType.video && video.length < 2) video.push({ timestamp, body });
  }).push(readFileSync(new URL('../wire/testdata/ffmpeg-publish.bin', import.meta.url)));
  return video;
}

describe('admission checks', () => {
  it('run in order with what the client asked; an allowed publish and play go on to the hub', async () => {
    const seen: string[] = [];
    const recordAll: AdmissionCheck = (request) => {
      seen.push(`${request.action} ${request.app}/${request.key} ?${request.query} ${request.tcUrl ?? '-'}`);
      return { allow: true };
    };
    const second: AdmissionCheck = async (request) => {
      seen.push(`second ${request.action}`);
      return { allow: true };
    };
    const { hub, url } = await startTestRtmpServer({}, { admission: [recordAll, second] });
    const publisher = await testClient(url('cam?token=abc'));
    await publisher.publish();
    const player = await testClient(url('cam'));
    await player.play();
    const tcUrl = url('').replace(/\/$/, '');
    expect(seen).toEqual([`publish live/cam ?token=abc ${tcUrl}`, 'second publish', `play live/cam ? ${tcUrl}`, 'second play']);
    expect(hub.get('live', 'cam')?.subscriberCount).toBe(1);
  });

  it('send a refusal with the check’s code before the hub is asked, and close when asked to', async () => {
    const refuseAll: AdmissionCheck = (request) =>
      request.key === 'closing'
        ? { allow: false, code: 'NetStream.Publish.BadName', description: 'not yours', close: true }
        : { allow: false, code: `NetStream.${request.action === 'publish' ? 'Publish' : 'Play'}.Unauthorized`, description: 'no token' };
    const { hub, url, stats } = await startTestRtmpServer({}, { admission: [refuseAll] });

    const publisher = await testClient(url('cam'));
    const refused = await publisher.publish().catch((err: unknown) => err);
    expect(codeOf(refused)).toBe('NetStream.Publish.Unauthorized');
    expect(hub.size).toBe(0);
    // Without `close` the connection stays usable.
    expect((await publisher.call('getStreamLength', null, 'cam')).name).toBe('_result');

    const player = await testClient(url('cam'));
    expect(codeOf(await player.play().catch((err: unknown) => err))).toBe('NetStream.Play.Unauthorized');

    const closing = await testClient(url('closing'));
    const closed = new Promise<void>((resolve) => closing.once('close', () => resolve()));
    expect(codeOf(await closing.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.BadName');
    await closed;
    expect(stats.protocols.rtmp.commandErrors).toMatchObject({ publish: 2, play: 1 });
  });

  it('refuse with Failed when a check throws, and the server goes on', async () => {
    const broken: AdmissionCheck = () => {
      throw new Error('claims store unreachable');
    };
    const { hub, url, stats } = await startTestRtmpServer({}, { admission: [broken] });
    const publisher = await testClient(url('cam'));
    expect(codeOf(await publisher.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.Failed');
    const player = await testClient(url('cam'));
    expect(codeOf(await player.play().catch((err: unknown) => err))).toBe('NetStream.Play.Failed');
    expect(hub.size).toBe(0);
    expect(stats.protocols.rtmp.protocolErrors.internal).toBeUndefined();
  });

  it('let a client that leaves during a slow check go, publish nothing for it and release the lease it was granted', async () => {
    let pending: AdmissionRequest | undefined;
    let answer: (allow: boolean) => void = () => undefined;
    const lease = { attached: 0, released: 0 };
    const slow: AdmissionCheck = (request) =>
      new Promise((resolve) => {
        pending = request;
        answer = (allow) =>
          resolve(
            allow
              ? { allow: true, lease: { attach: () => void lease.attached++, release: () => void lease.released++ } }
              : { allow: false, code: 'NetStream.Publish.Unauthorized', description: 'late' },
          );
      });
    const { hub, url, stats, server } = await startTestRtmpServer({}, { admission: [slow] });
    const publisher = await testClient(url('cam'));
    void publisher.publish().catch(() => undefined);
    await until(() => pending !== undefined);
    expect(stats.protocols.rtmp.connections.admitting).toBe(1);
    publisher.destroy();
    await until(() => server.connections === 0);
    expect(pending!.signal.aborted).toBe(true);
    answer(true); // the check answers after the client left, and grants a lease (a claim, a credential's grant)
    await until(() => lease.released === 1);
    expect(lease.attached).toBe(0);
    expect(hub.size).toBe(0);
    expect(Object.values(stats.protocols.rtmp.connections).every((n) => n === 0)).toBe(true);
  });

  it('may take longer than the start deadline (a stream claim waits out a dead pod), but not than the idle timeout', async () => {
    const never: Promise<never> = new Promise(() => undefined);
    const slow: AdmissionCheck = async (request) => {
      if (request.key === 'stuck') return never;
      await sleep(2500);
      return { allow: true };
    };
    const { hub, url, stats } = await startTestRtmpServer({ startTimeoutSeconds: 1, idleTimeoutSeconds: 4 }, { admission: [slow] });
    const publisher = await testClient(url('cam'));
    await publisher.publish();
    expect(hub.get('live', 'cam')).toBeDefined();
    publisher.destroy(); // it sends nothing, and would be closed as idle too
    const stuck = await testClient(url('stuck'));
    const askedAt = performance.now();
    const closed = new Promise<number>((resolve) => stuck.once('close', () => resolve(performance.now() - askedAt)));
    void stuck.publish().catch(() => undefined);
    expect(await closed).toBeGreaterThanOrEqual(3500);
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject({ idle_timeout: 1 });
    expect(stats.protocols.rtmp.protocolErrors.start_timeout).toBeUndefined();
  });

  it('hold what an encoder sends right behind publish until the checks allow it', async () => {
    const [header, keyframe] = firstVideo();
    const slow: AdmissionCheck = async () => {
      // The encoder does not wait for Publish.Start: its first frames arrive during the check.
      publisher.sendVideo(header!.timestamp, header!.body);
      publisher.sendVideo(keyframe!.timestamp, keyframe!.body);
      await sleep(200);
      return { allow: true };
    };
    const { hub, url } = await startTestRtmpServer({}, { admission: [slow] });
    const publisher = await testClient(url('cam'));
    await publisher.publish();
    await until(() => hub.get('live', 'cam')?.lastKeyframe !== undefined);
    const stream = hub.get('live', 'cam')!;
    expect(stream.videoHeader?.body.equals(header!.body)).toBe(true);
    expect(stream.lastKeyframe?.body.equals(keyframe!.body)).toBe(true);
  });
});

describe('admit', () => {
  const request = (signal = new AbortController().signal): AdmissionRequest => publishRequest({ signal });
  const silent = () => undefined;

  it('allows with no checks, stops at the first refusal', async () => {
    expect(await admit([], request(), silent)).toEqual({ allow: true });
    const calls: number[] = [];
    const decision = await admit(
      [
        () => (calls.push(1), { allow: true }),
        () => (calls.push(2), { allow: false, code: 'NetStream.Publish.BadName', description: 'taken' }),
        () => (calls.push(3), { allow: true }),
      ],
      request(),
      silent,
    );
    expect(decision).toEqual({ allow: false, code: 'NetStream.Publish.BadName', description: 'taken' });
    expect(calls).toEqual([1, 2]);
  });

  it('asks no further check once the request is aborted', async () => {
    const abort = new AbortController();
    const calls: number[] = [];
    const decision = await admit(
      [
        () => {
          calls.push(1);
          abort.abort();
          return { allow: true };
        },
        () => (calls.push(2), { allow: true }),
      ],
      request(abort.signal),
      silent,
    );
    expect(calls).toEqual([1]);
    expect(decision.allow).toBe(false);
  });
});

describe('a refusal with close', () => {
  it('closes the connection at once, not at the start deadline', async () => {
    const refuse: AdmissionCheck = () => ({ allow: false, code: 'NetStream.Publish.BadName', description: 'not yours', close: true });
    const { url, stats } = await startTestRtmpServer({ startTimeoutSeconds: 60 }, { admission: [refuse] });
    const publisher = await testClient(url('cam'));
    const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    expect(codeOf(await publisher.publish().catch((err: unknown) => err))).toBe('NetStream.Publish.BadName');
    await closed;
    expect(stats.protocols.rtmp.protocolErrors).not.toHaveProperty('start_timeout');
  });
});

describe('leases', () => {
  it('are given back by admit when a later check refuses', async () => {
    const released: string[] = [];
    const lease = (name: string) => ({ attach: () => undefined, release: () => void released.push(name) });
    const decision = await admit(
      [() => ({ allow: true, lease: lease('first') }), () => ({ allow: false, code: 'NetStream.Publish.BadName', description: 'taken' })],
      publishRequest({ signal: new AbortController().signal }),
      () => undefined,
    );
    expect(decision.allow).toBe(false);
    expect(released).toEqual(['first']);
  });

  it('end a player that waits for its publisher when the check withdraws it', async () => {
    let end: (() => void) | undefined;
    const withdrawable: AdmissionCheck = () => ({ allow: true, lease: { attach: (e) => void (end = e), release: () => undefined } });
    const { url, hub } = await startTestRtmpServer({ playWaitSeconds: 30 }, { admission: [withdrawable] });
    const player = await testClient(url('later'));
    void player.play().catch(() => undefined);
    await until(() => hub.awaited('rtmp/live/later'));
    expect(end).toBeDefined();
    end!();
    await until(() => player.socket.destroyed, 5000);
    expect(hub.awaited('rtmp/live/later')).toBe(false);
  });
});
