import { EventEmitter } from 'node:events';
import type { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { codecFixture } from '../../test/support/codec-fixtures.ts';
import { FLV_FILE_HEADER, flvTag } from '../flv/mux.ts';
import type { AdmissionDecision } from '../rtmp/server/admission.ts';
import type { ClaimRequest } from '../fleet/claims.ts';
import { CLAIM_WAIT_MAX_BYTES } from './pipes.ts';
import { Transcodes } from './transcodes.ts';

/** The ffmpeg children spawned: their arguments, pipes, and the signals sent to them (each ends the child). */
const spawned = vi.hoisted(() => [] as { args: string[]; input: PassThrough; outputs: PassThrough[]; signals: string[] }[]);
vi.mock('node:child_process', async () => {
  const { PassThrough } = await import('node:stream');
  return {
    spawn: (_path: string, args: string[], options: { stdio: string[] }) => {
      const [input, , stderr, ...outputs] = options.stdio.map(() => new PassThrough());
      const record = { args, input: input!, outputs, signals: [] as string[] };
      spawned.push(record);
      const child = Object.assign(new EventEmitter(), { pid: 4242, exitCode: null, signalCode: null, stdin: input, stderr });
      return Object.assign(child, {
        stdio: [input, null, stderr, ...outputs],
        kill: (signal: string) => {
          record.signals.push(signal);
          child.emit('exit', null, signal);
          child.emit('close', null, signal);
        },
      });
    },
  };
});

const config = {
  transcodeRules: configSchema.shape.transcodeRules.parse([
    { app: 'live', key: 'cam*', renditions: [{ name: '480p', height: 480, videoBitrate: 1200 }] },
    { app: 'live', renditions: [{ name: 'low', height: 240, videoBitrate: 400 }] },
  ]),
  transcodeFfmpegPath: 'ffmpeg',
  transcodeMaxProcesses: 4,
  maxDecodePixels: 640 * 360,
};

/** An FLV AVC sequence header from a real encoder's avcC: the track's picture size. */
const describeVideo = (stream: Stream, fixture: 'h264_high_320x240' | 'h264_baseline_1280x720') =>
  stream.pushVideo(0, videoHeader(fixture), 0);

const open: Transcodes[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((transcodes) => transcodes.close()));
  spawned.splice(0);
});

function setUp(logger = pino({ level: 'silent' })): { hub: StreamHub; transcodes: Transcodes } {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 50 });
  const transcodes = new Transcodes({
    hub,
    config,
    logger,
  });
  open.push(transcodes);
  return { hub, transcodes };
}

const publisher = (remoteAddress: string) => ({ protocol: 'rtmp' as const, remoteAddress, close: () => {} });

/** An AVC sequence header as FLV video tag body. */
const videoHeader = (fixture: 'h264_high_320x240' | 'h264_baseline_1280x720') =>
  Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), codecFixture(`${fixture}.avcc`)]);

/** What ffmpeg writes of a rendition: the FLV header and its video sequence header. */
const renditionStart = () => Buffer.concat([FLV_FILE_HEADER(false, true), flvTag('video', 0, videoHeader('h264_high_320x240'))]);

describe('Transcodes', () => {
  it('knows a rendition by the rules in force, whether or not its source is live, and plays it as its source', () => {
    const { transcodes } = setUp();
    expect(transcodes.ladderOf('live', 'cam1').map((r) => r.key)).toEqual(['cam1_480p']);
    expect(transcodes.ladderOf('live', 'show').map((r) => r.key)).toEqual(['show_low']);
    expect(transcodes.ladderOf('other', 'cam1')).toEqual([]);
    expect(transcodes.playedAs('live', 'cam1_480p')).toBe('cam1');
    expect(transcodes.playedAs('live', 'show_low')).toBe('show');
    // cam1's rule makes no "low" rendition, and a name of another app is no rendition.
    expect(transcodes.playedAs('live', 'cam1_low')).toBeUndefined();
    expect(transcodes.playedAs('other', 'show_low')).toBeUndefined();
    expect(transcodes.playedAs('live', 'cam1')).toBeUndefined();
    // A key that would pass 128 characters with its suffix has no rendition.
    expect(transcodes.ladderOf('live', `s${'x'.repeat(126)}`)).toEqual([]);
  });

  it("feeds ffmpeg the source on its stdin and publishes what it writes to a rendition's pipe, until the pipe ends", async () => {
    const { hub, transcodes } = setUp();
    const source = hub.publish('live', 'cam1', publisher('10.0.0.1:5000'));
    describeVideo(source, 'h264_high_320x240');
    await vi.waitFor(() => expect(spawned).toHaveLength(1));
    const { args, input, outputs, signals } = spawned[0]!;
    expect(args.filter((arg) => arg.includes('://'))).toEqual([]);
    expect(outputs).toHaveLength(1);
    // The FLV header, then with the first frame the source's sequence header: the source as a player gets it.
    expect((input.read() as Buffer).subarray(0, 3).toString()).toBe('FLV');
    const idr = Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
    source.pushVideo(40, idr, 0);
    const fed = input.read() as Buffer;
    expect(fed.includes(videoHeader('h264_high_320x240'))).toBe(true);
    expect(fed.subarray(-idr.length - 4, -4)).toEqual(idr);
    expect(source.subscriberCounts().transcode).toBe(1);

    // ffmpeg writes the rendition: published as a transcode's, the transcode runs, and it is not transcoded again.
    expect(transcodes.viewOf(source)?.state).toBe('starting');
    outputs[0]!.write(renditionStart());
    const rendition = await hub.arrival('live', 'cam1_480p', 1000);
    expect(rendition?.publisher.protocol).toBe('transcode');
    expect(rendition?.videoTrack).toMatchObject({ width: 320, height: 240 });
    expect(transcodes.viewOf(source)?.state).toBe('running');
    expect(transcodes.viewOf(rendition!)).toBeUndefined();
    expect(transcodes.sourceOf(rendition!)).toBe(source);
    expect(transcodes.sourceOf(source)).toBeUndefined();

    // Its pipe ends (ffmpeg exits): the rendition is unpublished.
    outputs[0]!.end();
    await vi.waitFor(() => expect(hub.get('live', 'cam1_480p')).toBeUndefined());

    // The source ends: its ffmpeg gets SIGTERM.
    hub.unpublish(source);
    expect(signals).toEqual(['SIGTERM']);
    expect(spawned).toHaveLength(1);
  });

  it('warns when a rendition is ended from outside, not when rtmpd stops', async () => {
    const warnings: string[] = [];
    const { hub } = setUp(pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) }));
    for (const key of ['cam1', 'cam2']) describeVideo(hub.publish('live', key, publisher('10.0.0.1:5000')), 'h264_high_320x240');
    await vi.waitFor(() => expect(spawned).toHaveLength(2));
    for (const { outputs } of spawned) outputs[0]!.write(renditionStart());
    await Promise.all(['cam1_480p', 'cam2_480p'].map((key) => hub.arrival('live', key, 1000)));
    hub.get('live', 'cam2_480p')!.publisher.close('kicked');
    await vi.waitFor(() => expect(warnings.map((line) => (JSON.parse(line) as { why: string }).why)).toEqual(['kicked']));
    // cam1_480p is live when rtmpd stops.
    hub.closeAll();
    expect(warnings).toHaveLength(1);
  });

  it('publishes a rendition only with the claim it is given, gives it back when the rendition ends, and closes the pipe of one refused', async () => {
    const { hub, transcodes } = setUp();
    const claims: ClaimRequest[] = [];
    const released: string[] = [];
    transcodes.claim = async (request): Promise<AdmissionDecision> => {
      claims.push(request);
      if (request.key === 'show_low')
        return { allow: false, code: 'NetStream.Publish.BadName', description: 'is already being published (on pod edge-1)' };
      return { allow: true, lease: { attach: () => undefined, release: () => released.push(request.key) } };
    };
    for (const key of ['cam1', 'show']) describeVideo(hub.publish('live', key, publisher('10.0.0.1:5000')), 'h264_high_320x240');
    await vi.waitFor(() => expect(spawned).toHaveLength(2));
    // Nothing is claimed before ffmpeg writes.
    expect(claims).toEqual([]);
    const [cam, show] = spawned.map((child) => child.outputs[0]!);
    cam!.write(renditionStart());
    const rendition = await hub.arrival('live', 'cam1_480p', 1000);
    expect(claims).toMatchObject([{ app: 'live', key: 'cam1_480p', protocol: 'transcode' }]);
    show!.write(renditionStart());
    await vi.waitFor(() => expect(show!.destroyed).toBe(true));
    expect(hub.get('live', 'show_low')).toBeUndefined();
    expect(released).toEqual([]);
    hub.unpublish(rendition!);
    cam!.end();
    await vi.waitFor(() => expect(released).toEqual(['cam1_480p']));
  });

  /** An IDR or a non-IDR slice (its NAL unit `bytes` long) as FLV video tag body. */
  const slice = (key: boolean, timestamp: number, bytes = 2) => {
    const nal = Buffer.alloc(4 + bytes, 0x88);
    nal.writeUInt32BE(bytes);
    nal[4] = key ? 0x65 : 0x41;
    return flvTag('video', timestamp, Buffer.concat([Buffer.from([key ? 0x17 : 0x27, 1, 0, 0, 0]), nal]));
  };

  for (const [what, secondKeyframeBytes, lastKeyframe, frames] of [
    ['from its decoder config and last keyframe', 2, 80, 2],
    ['from its decoder config alone when its last GOP passes CLAIM_WAIT_MAX_BYTES', CLAIM_WAIT_MAX_BYTES, undefined, 0],
  ] as const) {
    it(`reads a rendition on while its claim is taken, and publishes it ${what}`, async () => {
      const { hub, transcodes } = setUp();
      let grant: ((decision: AdmissionDecision) => void) | undefined;
      transcodes.claim = () => new Promise((resolve) => (grant = resolve));
      describeVideo(hub.publish('live', 'cam1', publisher('10.0.0.1:5000')), 'h264_high_320x240');
      await vi.waitFor(() => expect(spawned).toHaveLength(1));
      const output = spawned[0]!.outputs[0]!;
      output.write(renditionStart());
      await vi.waitFor(() => expect(grant).toBeDefined());
      output.write(Buffer.concat([slice(true, 0), slice(false, 40), slice(true, 80, secondKeyframeBytes), slice(false, 120)]));
      await new Promise((resolve) => setImmediate(resolve));
      // Read, not left in the pipe: a pipe paused until the claim is held stalls ffmpeg.
      expect(output.readableLength).toBe(0);
      grant!({ allow: true, lease: { attach: () => undefined, release: () => undefined } });
      const rendition = await hub.arrival('live', 'cam1_480p', 1000);
      expect(rendition?.videoTrack).toMatchObject({ width: 320, height: 240 });
      expect(rendition?.lastKeyframe?.timestamp).toBe(lastKeyframe);
      expect(rendition?.stats.videoFrames).toBe(frames);
    });
  }

  it('starts no ffmpeg for a picture over --max-decode-pixels, and ends one whose source declares such a picture later; both counted', async () => {
    const { hub, transcodes } = setUp();
    const large = hub.publish('live', 'cam1', publisher('10.0.0.1:5000'));
    expect(transcodes.viewOf(large)?.state).toBe('starting');
    describeVideo(large, 'h264_baseline_1280x720');
    expect(transcodes.viewOf(large)).toBeUndefined();
    expect(transcodes.stats.refused).toEqual({ max_processes: 0, picture_too_large: 1 });

    const growing = hub.publish('live', 'cam2', publisher('10.0.0.1:5001'));
    describeVideo(growing, 'h264_high_320x240');
    await vi.waitFor(() => expect(spawned).toHaveLength(1));
    describeVideo(growing, 'h264_baseline_1280x720');
    expect(spawned[0]!.signals).toEqual(['SIGTERM']);
    expect(transcodes.viewOf(growing)).toBeUndefined();
    expect(transcodes.stats.refused).toEqual({ max_processes: 0, picture_too_large: 2 });
    expect(spawned).toHaveLength(1);
  });
});

describe('Transcodes, which streams', () => {
  it('transcodes up to --transcode-max-processes sources, that many included, and refuses the next, counted', () => {
    const { hub, transcodes } = setUp();
    const sources = [1, 2, 3, 4, 5].map((n) => hub.publish('live', `cam${n}`, publisher(`10.0.0.1:${5000 + n}`)));
    expect(sources.map((source) => transcodes.viewOf(source)?.state)).toEqual(['starting', 'starting', 'starting', 'starting', undefined]);
    expect(transcodes.stats.refused.max_processes).toBe(1);
  });

  it('leaves a stream relayed from its owner pod to the owner, which transcodes it', () => {
    const { hub, transcodes } = setUp();
    const relayed = hub.publish('live', 'cam1', { ...publisher('10.0.0.2:8082'), protocol: 'relay' });
    expect(transcodes.viewOf(relayed)).toBeUndefined();
  });
});
