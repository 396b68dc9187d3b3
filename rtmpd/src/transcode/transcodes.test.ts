import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthRequest } from '../auth/authorizer.ts';
import { configSchema } from '../config.ts';
import { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { codecFixture } from '../../test/support/codec-fixtures.ts';
import { TRANSCODE_PARAM, Transcodes } from './transcodes.ts';

/** The ffmpeg children spawned: their arguments, and the signals sent to them (each ends the child). */
const spawned = vi.hoisted(() => [] as { args: string[]; signals: string[] }[]);
vi.mock('node:child_process', () => ({
  spawn: (_path: string, args: string[]) => {
    const record = { args, signals: [] as string[] };
    spawned.push(record);
    const child = Object.assign(new EventEmitter(), { pid: 4242, exitCode: null, signalCode: null, stderr: new EventEmitter() });
    return Object.assign(child, {
      kill: (signal: string) => {
        record.signals.push(signal);
        child.emit('exit', null, signal);
        child.emit('close', null, signal);
      },
    });
  },
}));

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
  stream.pushVideo(0, Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), codecFixture(`${fixture}.avcc`)]), 0);

const open: Transcodes[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((transcodes) => transcodes.close()));
  spawned.splice(0);
});

function setUp(): { hub: StreamHub; transcodes: Transcodes } {
  const hub = new StreamHub({ gopCacheMaxBytes: 1 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 50 });
  const transcodes = new Transcodes({
    hub,
    config,
    rtmpAddress: () => ({ address: '0.0.0.0', port: 1935, family: 'IPv4' }),
    logger: pino({ level: 'silent' }),
  });
  open.push(transcodes);
  return { hub, transcodes };
}

const publisher = (remoteAddress: string) => ({ protocol: 'rtmp' as const, remoteAddress, close: () => {} });

const request = (more: Partial<AuthRequest>): AuthRequest => ({
  action: 'play',
  protocol: 'rtmp',
  tls: false,
  app: 'live',
  key: 'cam1',
  params: new URLSearchParams(),
  clientIp: '127.0.0.1',
  signal: new AbortController().signal,
  ...more,
});

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

  it("admits a live transcode's credential only over plain RTMP from loopback, to play its source and publish its renditions", async () => {
    const { hub, transcodes } = setUp();
    const source = hub.publish('live', 'cam1', publisher('10.0.0.1:5000'));
    describeVideo(source, 'h264_high_320x240');
    await vi.waitFor(() => expect(spawned).toHaveLength(1));
    const { args, signals } = spawned[0]!;
    const input = args[args.indexOf('-i') + 1]!;
    expect(input).toMatch(new RegExp(`^rtmp://127\\.0\\.0\\.1:1935/live/cam1\\?${TRANSCODE_PARAM}=[\\w-]{32}$`));
    expect(args.at(-1)).toBe(input.replace('/cam1?', '/cam1_480p?'));
    const params = new URLSearchParams(input.slice(input.indexOf('?') + 1));
    expect(transcodes.admits(request({ params }))).toBe(true);
    expect(transcodes.admits(request({ params, clientIp: '::1' }))).toBe(true);
    expect(transcodes.admits(request({ params, action: 'publish', key: 'cam1_480p' }))).toBe(true);
    expect(transcodes.admits(request({ params, clientIp: '::ffff:127.0.0.2' }))).toBe(true);
    // Not from another address (nor one that only begins or ends like loopback), not over TLS or HTTP,
    // not for another stream or action, not a guess.
    for (const clientIp of ['10.0.0.2', '127.0.0.1.evil', '::ffff:10.0.0.1', '::2', '1127.0.0.1']) {
      expect(transcodes.admits(request({ params, clientIp })), clientIp).toBe(false);
    }
    expect(transcodes.admits(request({ params, tls: true }))).toBe(false);
    expect(transcodes.admits(request({ params, protocol: 'hls' }))).toBe(false);
    expect(transcodes.admits(request({ params, action: 'publish' }))).toBe(false);
    expect(transcodes.admits(request({ params, key: 'cam2' }))).toBe(false);
    expect(transcodes.admits(request({ params: new URLSearchParams({ [TRANSCODE_PARAM]: 'guess' }) }))).toBe(false);

    // Its rendition is published: running, and the rendition is not transcoded again but names its source.
    expect(transcodes.viewOf(source)?.state).toBe('starting');
    const rendition = hub.publish('live', 'cam1_480p', publisher('127.0.0.1:5001'));
    expect(transcodes.viewOf(source)?.state).toBe('running');
    expect(transcodes.viewOf(rendition)).toBeUndefined();
    expect(transcodes.sourceOf(rendition)).toBe(source);
    expect(transcodes.sourceOf(source)).toBeUndefined();

    // The source ends: its ffmpeg gets SIGTERM, and the credential opens nothing any more.
    hub.unpublish(source);
    expect(signals).toEqual(['SIGTERM']);
    expect(transcodes.admits(request({ params }))).toBe(false);
    expect(spawned).toHaveLength(1);
  });

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
