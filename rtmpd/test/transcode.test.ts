// Adaptive bitrate with real parts: ffmpeg publishes a small test pattern to
// rtmpd (auth on), whose transcode ffmpeg, fed the source on its stdin, makes
// two renditions of it on its output pipes; ffprobe reads them back over
// HTTP-FLV and RTMP and the multivariant playlist is parsed. ffmpeg's command
// line holds no URL and no credential. Faults: an outsider publishing a
// rendition's name, the transcode ffmpeg killed (its renditions end, it is
// restarted, counted), stopped (SIGSTOP: its feed is bounded, the source's
// other players play on, it is killed as stalled and restarted), the source
// unpublishing (the child is gone within the deadline), a bad ffmpeg path
// (counted, backoff, no crash), the process cap, a child that ignores SIGTERM
// at shutdown (killed: no child outlives rtmpd), and one that floods its
// stderr and fails on every start (its tail kept, restarts at doubling
// delays). A multivariant playlist asked for while the transcode is still
// starting waits for its renditions, and not for an ffmpeg that fails. In a
// fleet (one pod in process, in-memory Leases) each rendition holds its claim
// while it lives.
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config.ts';
import { StreamClaims } from '../src/fleet/claims.ts';
import { FleetDirectory } from '../src/fleet/directory.ts';
import { claimName, claimRecord } from '../src/fleet/records.ts';
import { FlvDemuxer } from '../src/flv/demux.ts';
import { pushFlvTags } from '../src/flv/publish.ts';
import { StreamHub } from '../src/hub/hub.ts';
import { STOP_DEADLINE_MS } from '../src/transcode/transcoder.ts';
import { Transcodes } from '../src/transcode/transcodes.ts';
import { testPatternInputs } from './support/clips.ts';
import { memoryLeaseApi } from './support/memory-lease-api.ts';
import {
  listStreams,
  metric,
  metricReaches,
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

/** Children of rtmpd a failed test may leave behind (stopAll kills rtmpd with SIGKILL, which gives it no time for them). */
const transcodePids = new Set<number>();
afterAll(() => {
  stopAll();
  for (const pid of transcodePids) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

const quiet = ['--recording-enabled', 'false', '--snapshot-enabled', 'false'];
const ladder = [
  { name: '120p', height: 120, videoBitrate: 300, audioBitrate: 64 },
  { name: '90p', height: 90, videoBitrate: 150, audioBitrate: 32 },
];
const rules = (renditions: unknown[] = ladder) => ['--transcode-rules', JSON.stringify([{ app: 'live', renditions }])];

async function streamOf(server: RunningServer, id: string): Promise<StreamJson | undefined> {
  return (await listStreams(server)).find((s) => s.stream_id === id);
}

/** The pids of the transcode ffmpegs rtmpd logged as started, in order. */
function startedPids(server: RunningServer): number[] {
  const pids = server.logs.filter((l) => l.msg === 'transcode: ffmpeg started').map((l) => l.pid as number);
  for (const pid of pids) transcodePids.add(pid);
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface ParsedVariant {
  bandwidth: number;
  averageBandwidth: number;
  resolution: string | undefined;
  codecs: string | undefined;
  uri: string;
}

function parseMultivariant(text: string): ParsedVariant[] {
  const lines = text.trim().split('\n');
  expect(lines[0]).toBe('#EXTM3U');
  const variants: ParsedVariant[] = [];
  lines.forEach((line, i) => {
    if (!line.startsWith('#EXT-X-STREAM-INF:')) return;
    const attr = (name: string) => new RegExp(`[:,]${name}=("([^"]*)"|[^,]*)`).exec(line);
    const value = (name: string) => {
      const match = attr(name);
      return match ? (match[2] ?? match[1]) : undefined;
    };
    variants.push({
      bandwidth: Number(value('BANDWIDTH')),
      averageBandwidth: Number(value('AVERAGE-BANDWIDTH')),
      resolution: value('RESOLUTION'),
      codecs: value('CODECS'),
      uri: lines[i + 1]!,
    });
  });
  return variants;
}

describe('transcoding', () => {
  it('makes a ladder of a stream behind auth, lists it in the multivariant playlist, restarts a killed ffmpeg and stops with the source', async () => {
    const dir = await tempDir('rtmpd-transcode-');
    await mkdir(join(dir, 'keys'));
    await writeFile(join(dir, 'keys', 'cam'), 'pub-secret\n');
    const server = await startServer([
      ...quiet,
      ...rules(),
      '--auth-rules',
      JSON.stringify([{ app: 'live', method: 'keys', keys: join(dir, 'keys') }]),
    ]);
    const publisher = publishTestPattern(server.rtmpUrl('live', 'cam?secret=pub-secret'), { seconds: 60, size: '320x180' });
    await waitForStream(server, 'rtmp/live/cam');
    // The child's own credential passes the key rules, which know nothing of the renditions.
    const low = await waitForStream(server, 'rtmp/live/cam_90p', 30_000);
    const mid = await waitForStream(server, 'rtmp/live/cam_120p', 30_000);
    expect(low.transcoded_from).toBe('rtmp/live/cam');
    // ffmpeg's command line, which any process of the pod can read, holds no URL and no credential: its media goes through pipes.
    const [first] = startedPids(server);
    const cmdline = readFileSync(`/proc/${first}/cmdline`, 'utf8').split('\0');
    expect(cmdline.join(' ')).not.toMatch(/rtmps?:\/\/|secret|rtmpd_transcode|127\.0\.0\.1/);
    expect(cmdline).toContain('pipe:0');
    expect(low.publisher.protocol).toBe('transcode');
    expect(await metric(server, 'rtmpd_publishers', 'protocol="transcode"')).toBe(2);
    expect(mid.video).toMatchObject({ codec: 'h264', height: 120 });
    expect(low.video).toMatchObject({ codec: 'h264', height: 90, width: 160 });
    const source = await streamOf(server, 'rtmp/live/cam');
    expect(source?.transcode).toMatchObject({
      state: 'running',
      starts: 1,
      renditions: [
        { name: '120p', stream_id: 'rtmp/live/cam_120p', height: 120, bitrate_kbps: 364 },
        { name: '90p', stream_id: 'rtmp/live/cam_90p', height: 90, bitrate_kbps: 182 },
      ],
    });
    expect(source?.transcoded_from).toBeNull();

    // A rendition plays over HTTP-FLV with the source's credential (renditions are played under its rules).
    const probed = await probe(server.httpUrl('/live/cam_120p.flv?secret=pub-secret'));
    expect(probed.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', height: 120 });
    expect(probed.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    expect((await fetch(server.httpUrl('/live/cam_90p.flv'))).status).toBe(401);
    // And over RTMP.
    const overRtmp = await probe(server.rtmpUrl('live', 'cam_90p?secret=pub-secret'));
    expect(overRtmp.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', height: 90 });

    // The multivariant playlist: the source and both renditions, credentials carried into each URI.
    expect((await fetch(server.httpUrl('/live/cam/master.m3u8'))).status).toBe(401);
    const master = await fetch(server.httpUrl('/live/cam/master.m3u8?secret=pub-secret'));
    expect(master.status).toBe(200);
    expect(master.headers.get('content-type')).toMatch(/mpegurl/);
    const variants = parseMultivariant(await master.text());
    expect(variants.map((v) => [v.uri, v.resolution])).toEqual([
      ['index.m3u8?secret=pub-secret', '320x180'],
      ['../cam_120p/index.m3u8?secret=pub-secret', '214x120'],
      ['../cam_90p/index.m3u8?secret=pub-secret', '160x90'],
    ]);
    for (const variant of variants) expect(variant.codecs).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    // Each from its own segments (the master waits for every variant's first): a rendition's near its
    // configured 364 and 182 kbit/s, the peak at least the average.
    expect(variants[0]!.bandwidth).toBeGreaterThan(10_000);
    for (const [variant, kbps] of [
      [variants[1]!, 364],
      [variants[2]!, 182],
    ] as const) {
      expect(variant.averageBandwidth).toBeGreaterThan(kbps * 1000 * 0.25);
      expect(variant.averageBandwidth).toBeLessThan(kbps * 1000 * 2);
      expect(variant.bandwidth).toBeGreaterThanOrEqual(variant.averageBandwidth);
    }
    // Each variant URI resolves against the master's to a media playlist that serves.
    const media = await fetch(new URL(variants[2]!.uri, server.httpUrl('/live/cam/master.m3u8')));
    expect(media.status).toBe(200);
    expect(await media.text()).toMatch(/#EXTINF/);

    // The rendition's name from outside, without the key's credential, is refused.
    const attempt = runFfmpeg([
      ...['-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25', '-t', '5', '-c:v', 'libx264', '-f', 'flv'],
      server.rtmpUrl('live', 'cam_90p'),
    ]);
    expect(await attempt.exited).not.toBe(0);
    expect(attempt.stderr()).toMatch(/needs the stream key's \?secret=/);

    // ffmpeg killed mid-stream: its renditions end with its pipes (seen in the second or more before the restart, at least 0.8 s later, publishes them again); it is restarted and counted, and they come back.
    process.kill(first!, 'SIGKILL');
    await eventually('the renditions unpublished', async () => (await listStreams(server)).length === 1, 5000);
    await eventually(
      'a second ffmpeg running',
      async () => (await streamOf(server, 'rtmp/live/cam'))?.transcode?.state === 'running' && startedPids(server).length === 2,
    );
    expect(await metric(server, 'rtmpd_transcode_failures_total', 'reason="killed"')).toBe(1);
    expect(await metric(server, 'rtmpd_transcode_starts_total')).toBe(2);
    expect((await streamOf(server, 'rtmp/live/cam'))?.transcode?.last_error).toMatch(/killed by SIGKILL/);
    await waitForStream(server, 'rtmp/live/cam_90p', 30_000);

    // The source unpublishes: its ffmpeg is gone within the deadline, and so are the renditions.
    const second = startedPids(server)[1]!;
    expect(alive(second)).toBe(true);
    publisher.child.kill('SIGINT');
    await eventually('the transcode ffmpeg gone', () => !alive(second), STOP_DEADLINE_MS + 5000);
    await eventually('the renditions ended', async () => (await listStreams(server)).length === 0);
    expect(await metric(server, 'rtmpd_transcodes', 'state="running"')).toBe(0);
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it('answers a master request sent while the transcode starts with every rendition, and one whose ffmpeg fails without waiting for it', async () => {
    // Real ffmpeg, held until the test lets it go, so the master requests come while both transcodes are
    // starting; the one of `broken` (told by its rule's bitrate) is given an option ffmpeg does not know, and
    // exits. Held 60 s at most: a test that fails first leaves no shell waiting.
    const dir = await tempDir('rtmpd-transcode-');
    const go = join(dir, 'go');
    const held = join(dir, 'ffmpeg');
    await writeFile(
      held,
      `#!/bin/sh\ni=0\nwhile [ ! -e '${go}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\ncase "$*" in *'-b:v 151k'*) exec ffmpeg -no-such-option "$@";; esac\nexec ffmpeg "$@"\n`,
    );
    await chmod(held, 0o755);
    const brokenRule = { app: 'live', key: 'broken', renditions: [{ ...ladder[1], videoBitrate: 151 }] };
    const twoRules = ['--transcode-rules', JSON.stringify([brokenRule, { app: 'live', renditions: ladder }])];
    const server = await startServer([...quiet, ...twoRules, '--transcode-ffmpeg-path', held]);
    const keys = ['cam', 'broken'];
    const publishers = keys.map((key) => publishTestPattern(server.rtmpUrl('live', key), { seconds: 60, size: '320x180' }));
    for (const key of keys) await waitForStream(server, `rtmp/live/${key}`);
    expect((await listStreams(server)).map((s) => [s.stream_id, s.transcode?.state]).sort()).toEqual([
      ['rtmp/live/broken', 'starting'],
      ['rtmp/live/cam', 'starting'],
    ]);
    const master = async (key: string) => {
      const response = await fetch(server.httpUrl(`/live/${key}/master.m3u8`));
      expect(response.status).toBe(200);
      return { uris: parseMultivariant(await response.text()).map((v) => v.uri), at: Date.now() };
    };
    const answers = Promise.all(keys.map(master));
    await sleep(500);
    const released = Date.now();
    await writeFile(go, '');
    const [cam, broken] = await answers;
    expect(cam!.uris).toEqual(['index.m3u8', '../cam_120p/index.m3u8', '../cam_90p/index.m3u8']);
    expect(broken!.uris).toEqual(['index.m3u8']);
    // Answered once its ffmpeg failed: well within the 15 s a first segment is waited for.
    expect(broken!.at - released).toBeLessThan(10_000);
    expect((await streamOf(server, 'rtmp/live/broken'))?.transcode?.last_error).toMatch(/no-such-option/);
    startedPids(server);
    for (const publisher of publishers) publisher.child.kill('SIGINT');
    expect(await server.stop()).toBe(0);
  }, 90_000);

  it('counts a bad ffmpeg path and retries it, refuses streams past the cap, and kills a child that ignores SIGTERM at shutdown', async () => {
    const bad = await startServer([...quiet, ...rules(), '--transcode-ffmpeg-path', '/nonexistent/ffmpeg']);
    const publisher = publishTestPattern(bad.rtmpUrl('live', 'one'), { seconds: 30, size: '160x90' });
    await waitForStream(bad, 'rtmp/live/one');
    await metricReaches(bad, 'rtmpd_transcode_failures_total', 'reason="spawn_failed"', 2, 20_000);
    const view = (await streamOf(bad, 'rtmp/live/one'))?.transcode;
    expect(view?.last_error).toBe('cannot run /nonexistent/ffmpeg: ENOENT');
    expect(['backoff', 'starting']).toContain(view?.state);
    expect(bad.logs.some((l) => l.msg === 'transcode: ffmpeg ended; restarting' && l.reason === 'spawn_failed')).toBe(true);
    expect((await fetch(bad.httpUrl('/health'))).status).toBe(200);
    publisher.child.kill('SIGINT');
    expect(await bad.stop()).toBe(0);

    // An "ffmpeg" that ignores SIGTERM: each runs until killed, two may run, the third stream is refused.
    const dir = await tempDir('rtmpd-transcode-');
    const stubborn = join(dir, 'ffmpeg');
    await writeFile(stubborn, "#!/bin/sh\ntrap '' TERM\nexec sleep 120\n");
    await chmod(stubborn, 0o755);
    const capped = await startServer([...quiet, ...rules(), '--transcode-ffmpeg-path', stubborn, '--transcode-max-processes', '2']);
    const publishers = ['a', 'b', 'c'].map((key) => publishTestPattern(capped.rtmpUrl('live', key), { seconds: 30, size: '160x90' }));
    for (const key of ['a', 'b', 'c']) await waitForStream(capped, `rtmp/live/${key}`);
    await eventually('two started', () => startedPids(capped).length === 2);
    expect(await metric(capped, 'rtmpd_transcode_refused_total', 'reason="max_processes"')).toBe(1);
    expect(capped.logs.filter((l) => l.msg === 'transcode: not transcoded, --transcode-max-processes are running')).toHaveLength(1);
    expect((await listStreams(capped)).filter((s) => s.transcode === null)).toHaveLength(1);
    expect(await metric(capped, 'rtmpd_transcodes', 'state="starting"')).toBe(2);
    const pids = startedPids(capped);
    const stoppedAt = Date.now();
    expect(await capped.stop()).toBe(0);
    // rtmpd waited for them: SIGTERM was ignored, SIGKILL came at the deadline.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(STOP_DEADLINE_MS - 500);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const p of publishers) p.child.kill('SIGKILL');
  }, 90_000);
  it('never lets a stalled ffmpeg hold up the source: its feed is bounded, its other players play on, and it is killed and restarted', async () => {
    const stallSeconds = 8;
    const server = await startServer([
      ...quiet,
      ...rules(),
      ...['--player-max-buffer-bytes', String(64 * 1024), '--player-stall-timeout-seconds', String(stallSeconds)],
    ]);
    const publisher = publishTestPattern(server.rtmpUrl('live', 'cam'), { seconds: 90, size: '320x180' });
    await waitForStream(server, 'rtmp/live/cam_90p', 30_000);
    // Another player of the source, counting what it gets.
    const player = await fetch(server.httpUrl('/live/cam.flv'));
    let received = 0;
    void (async () => {
      for await (const chunk of player.body!) received += (chunk as Uint8Array).length;
    })().catch(() => undefined);
    const droppedFrames = async () => (await streamOf(server, 'rtmp/live/cam'))?.dropped_frames ?? 0;
    const droppedBefore = await droppedFrames();

    const [stopped] = startedPids(server);
    process.kill(stopped!, 'SIGSTOP');
    // What ffmpeg does not read passes the bound: it is sent nothing until the next keyframe, before it is found stalled.
    await eventually('frames dropped for the stopped ffmpeg', async () => (await droppedFrames()) > droppedBefore, stallSeconds * 1000);
    expect(alive(stopped!)).toBe(true);
    // The player plays on meanwhile.
    const before = received;
    await sleep(1000);
    expect(received).toBeGreaterThan(before + 1000);

    // Found stalled: killed (SIGKILL reaches a stopped process), counted, restarted, the renditions back.
    await eventually('the stopped ffmpeg killed', () => !alive(stopped!), stallSeconds * 1000 + 5000);
    expect(server.logs.some((l) => l.msg === 'transcode: ffmpeg stopped reading its source; killing it')).toBe(true);
    await eventually(
      'a second ffmpeg running',
      async () => (await streamOf(server, 'rtmp/live/cam'))?.transcode?.state === 'running' && startedPids(server).length === 2,
    );
    expect(await metric(server, 'rtmpd_transcode_failures_total', 'reason="killed"')).toBe(1);
    // A transcode is no player: not counted as one closed.
    expect(await metric(server, 'rtmpd_players_stalled_closed_total')).toBe(0);
    const after = received;
    await sleep(1000);
    expect(received).toBeGreaterThan(after + 1000);
    publisher.child.kill('SIGKILL');
    expect(await server.stop()).toBe(0);
  }, 90_000);

  it("keeps only the tail of an ffmpeg's stderr however much it writes, and restarts a failing one after doubling delays", async () => {
    // An "ffmpeg" that writes 300 MB of errors (whole lines of 27 bytes) and exits, then fails at once on every later start.
    const dir = await tempDir('rtmpd-transcode-');
    const spew = join(dir, 'ffmpeg');
    await writeFile(
      spew,
      `#!/bin/sh\nif [ ! -e ${dir}/spewed ]; then touch ${dir}/spewed; yes 'broken frame: decode error' | head -c $((27 * 11111111)) >&2; fi\nexit 1\n`,
    );
    await chmod(spew, 0o755);
    const server = await startServer([...quiet, ...rules(), '--transcode-ffmpeg-path', spew]);
    const peakMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) / 1024;
    const before = peakMiB();
    const publisher = publishTestPattern(server.rtmpUrl('live', 'spew'), { seconds: 30, size: '160x90' });
    await waitForStream(server, 'rtmp/live/spew');
    const restarts = () => server.logs.filter((l) => l.msg === 'transcode: ffmpeg ended; restarting');
    await eventually('three failed starts', () => restarts().length >= 3);
    // 300 MB went through rtmpd, which keeps its last 4 KiB: the peak counts the publish, the API and the 64 KiB reads until a GC takes them (about 70 MiB).
    expect(peakMiB() - before).toBeLessThan(150);
    const lastError = (await streamOf(server, 'rtmp/live/spew'))?.transcode?.last_error ?? '';
    expect(lastError.length).toBeLessThan(1100);
    // First failure: the 300 MB run; its error is the tail of what it wrote.
    expect(restarts()[0]!.err).toMatch(/^ffmpeg exited with code 1: (broken frame: decode error \| )+broken frame: decode error$/);
    // 1 s, 2 s, 4 s, each within ±20 %: the third at least 3.2 s, 2.7 times the first; at a constant pace at most 1.5 times.
    const delays = restarts().map((l) => l.retryInSeconds as number);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(2.5 * delays[0]!);
    publisher.child.kill('SIGKILL');
    expect(await server.stop()).toBe(0);
  }, 60_000);

  it("takes each rendition's fleet claim as an RTMP publish takes its stream's, and gives it back when the source ends", async () => {
    // One pod in process: its hub, its claims in in-memory Leases, and its transcodes with real ffmpeg.
    const fleet = 'edge';
    const api = memoryLeaseApi();
    const log = pino({ level: 'silent' });
    const hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 1 << 20, playerStallTimeoutMs: 10_000 });
    const claims = new StreamClaims({
      api,
      directory: new FleetDirectory({ api, fleet, log }),
      hub,
      fleet,
      identity: 'edge-0_transcode',
      durationSeconds: 10,
      maxWaitMs: 5000,
      endRelay: () => undefined,
      answers: () => Promise.resolve(true),
      log,
    });
    const config = {
      transcodeRules: configSchema.shape.transcodeRules.parse([{ app: 'live', renditions: ladder }]),
      transcodeFfmpegPath: 'ffmpeg',
      transcodeMaxProcesses: 1,
      maxDecodePixels: 1920 * 1080,
    };
    const transcodes = new Transcodes({ hub, config, logger: log });
    transcodes.claim = claims.claim;
    // The source, as an encoder's FLV demuxed into the hub (its own claim is not this test's).
    const source = hub.publish('live', 'cam', { protocol: 'rtmp', remoteAddress: 'test', close: () => undefined });
    const encoder = spawn(
      'ffmpeg',
      [
        ...['-hide_banner', '-loglevel', 'error', '-re', ...testPatternInputs('320x180'), '-t', '60'],
        ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac', '-f', 'flv', 'pipe:1'],
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const demuxer = new FlvDemuxer();
    encoder.stdout!.on('data', (chunk: Buffer) => pushFlvTags(source, demuxer.push(chunk), performance.now()));
    const claimOf = async (key: string) => {
      const lease = await api.get(claimName(fleet, `rtmp/live/${key}`));
      return lease && claimRecord(lease);
    };
    try {
      for (const { name } of ladder) {
        expect(await hub.arrival('live', `cam_${name}`, 30_000)).toMatchObject({ publisher: { protocol: 'transcode' } });
        expect(await claimOf(`cam_${name}`)).toMatchObject({ identity: 'edge-0_transcode', protocol: 'transcode' });
      }
      expect(claims.heldStreams().sort()).toEqual(['rtmp/live/cam_120p', 'rtmp/live/cam_90p']);

      hub.unpublish(source);
      await eventually('the renditions ended', () => hub.size === 0, STOP_DEADLINE_MS + 5000);
      await eventually(
        'their claims given back',
        async () => (await claimOf('cam_90p')) === undefined && (await claimOf('cam_120p')) === undefined,
      );
      expect(claims.heldStreams()).toEqual([]);
    } finally {
      encoder.kill('SIGKILL');
      await transcodes.close();
      claims.close();
      hub.closeAll();
    }
  }, 60_000);
});
