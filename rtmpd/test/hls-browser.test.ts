// hls.js in a real headless Chromium, on a page from another origin, plays
// rtmpd's HLS and Low-Latency HLS: the video's currentTime advances and the
// page sees no error. A transcoded stream's multivariant playlist plays too,
// and hls.js switches between its variants. A publisher whose audio pauses
// for 5 s plays through the pause, as hls.js (AAC) and ffmpeg (AAC, MP3, 5.1
// AAC with a program config element) see it, and so does its recording.
// HLS in MPEG-TS plays too, an MP3 stream's among it: Chromium's MSE takes
// MP3 as audio/mpeg only, which hls.js feeds from TS, not from fMP4.
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type TestBrowser } from '../../e2e/lib/chromium.ts';
import { encodeOnce, testPatternInputs } from './support/clips.ts';
import {
  publishTestPattern,
  runCommand,
  runFfmpeg,
  startServer,
  stopAll,
  waitForStream,
  type Publisher,
  type RunningServer,
} from './support/processes.ts';
import { sleep } from './support/wait.ts';

let server: RunningServer;
let browser: TestBrowser;
let site: Server;
let siteUrl: string;

// The page: hls.js plays ?src= into a <video>; errors land in window.hlsErrors.
const PAGE = `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.js"></script>
<script>
  const src = new URLSearchParams(location.search).get('src');
  const lowLatency = new URLSearchParams(location.search).get('ll') === '1';
  window.hlsErrors = [];
  const hls = (window.hls = new Hls({ lowLatencyMode: lowLatency, enableWorker: false }));
  hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) window.hlsErrors.push(data.type + ' ' + data.details); });
  hls.loadSource(src);
  hls.attachMedia(document.getElementById('v'));
  document.getElementById('v').play().catch(() => {});
</script></body></html>`;

beforeAll(async () => {
  server = await startServer([
    '--hls-segment-seconds',
    '1',
    '--hls-rules',
    JSON.stringify([
      { app: 'll', lowLatency: true },
      { app: 'gapll', lowLatency: true },
      { app: 'gapmp3ll', lowLatency: true },
      { app: 'ts', variant: 'mpegts' },
      { app: 'tsmp3', variant: 'mpegts' },
      { app: 'gapts', variant: 'mpegts' },
      { app: 'gapmp3ts', variant: 'mpegts' },
    ]),
    // A whole audio-gap clip stays listed, for ffprobe to read it back once it ended.
    '--hls-window-segments',
    '30',
    '--transcode-rules',
    JSON.stringify([{ app: 'abr', renditions: [{ name: '180p', height: 180, videoBitrate: 300, audioBitrate: 64 }] }]),
    '--recording-enabled',
    'false',
    '--recording-rules',
    JSON.stringify([
      ...['gap', 'gapll', 'gapmp3', 'gapmp3ll'].map((app) => ({ app, enabled: true, format: 'flv' })),
      { app: 'gappce', enabled: true, format: 'fmp4' },
    ]),
    '--snapshot-enabled',
    'false',
  ]);
  const hlsJs = await readFile(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'));
  // Another origin than rtmpd's: a different port.
  site = createServer((req, res) => {
    if (req.url === '/hls.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(hlsJs);
    else res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  site?.close();
  await server?.stop();
  stopAll();
});

interface Play {
  /** Publishes to the RTMP URL: by default the test pattern for 60 s. */
  publish?: (url: string) => Publisher;
  lowLatency?: boolean;
  playlist?: string;
  /** Streams to wait for besides app/web (a transcode's renditions). */
  streams?: string[];
  /** Runs once playback advances. */
  whilePlaying?: (page: Page) => Promise<void>;
}

async function playsFor(
  app: string,
  {
    publish = (url) => publishTestPattern(url, { seconds: 60 }),
    lowLatency = false,
    playlist = 'index.m3u8',
    streams = [],
    whilePlaying,
  }: Play = {},
): Promise<void> {
  const publisher = publish(server.rtmpUrl(app, 'web'));
  try {
    for (const id of [`rtmp/${app}/web`, ...streams]) await waitForStream(server, id, 30_000);
    const page = await browser.newPage();
    const src = server.httpUrl(`/${app}/web/${playlist}`);
    await page.goto(`${siteUrl}?src=${encodeURIComponent(src)}&ll=${lowLatency ? 1 : 0}`);
    // Expressions as strings: this file is type-checked without the DOM library.
    const currentTime = () => page.evaluate<number>("document.getElementById('v').currentTime");
    await expect.poll(currentTime, { timeout: 30_000, interval: 250 }).toBeGreaterThan(1);
    const before = await currentTime();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await currentTime()).toBeGreaterThan(before + 1);
    await whilePlaying?.(page);
    expect(await page.evaluate<string[]>('window.hlsErrors')).toEqual([]);
    await page.close();
  } finally {
    publisher.child.kill('SIGKILL');
  }
}

/** The test pattern for 60 s, its audio in MP3. */
const publishMp3Pattern = (url: string): Publisher =>
  runFfmpeg([
    '-re',
    ...testPatternInputs('320x180'),
    ...['-t', '60', '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '25'],
    ...['-c:a', 'libmp3lame', '-f', 'flv', url],
  ]);

/** Once playing: the playlist lists .ts segments, and Chromium decodes audio from them (it does a muted video's too). */
async function playsTsWithSound(page: Page, app: string): Promise<void> {
  const playlist = await (await fetch(server.httpUrl(`/${app}/web/index.m3u8`))).text();
  expect(playlist).toMatch(/^seg-[0-9a-f]{16}-\d+\.ts$/m);
  expect(playlist).not.toContain('#EXT-X-MAP');
  const audioBytes = () => page.evaluate<number>("document.getElementById('v').webkitAudioDecodedByteCount");
  await expect.poll(audioBytes, { timeout: 10_000, interval: 250 }).toBeGreaterThan(0);
}

describe('hls.js in Chromium, from another origin', () => {
  it('plays HLS and its currentTime advances', async () => {
    await playsFor('live');
    expect(browser.problems).toEqual([]);
  });

  it('plays Low-Latency HLS and its currentTime advances', async () => {
    await playsFor('ll', { lowLatency: true });
    expect(browser.problems).toEqual([]);
  });

  it('plays HLS in MPEG-TS segments, H.264 and AAC, with sound', async () => {
    await playsFor('ts', { whilePlaying: (page) => playsTsWithSound(page, 'ts') });
    expect(browser.problems).toEqual([]);
  });

  it('plays an H.264 and MP3 stream from MPEG-TS segments, with sound (from fMP4 it cannot)', async () => {
    await playsFor('tsmp3', { publish: publishMp3Pattern, whilePlaying: (page) => playsTsWithSound(page, 'tsmp3') });
    expect(browser.problems).toEqual([]);
  });

  it("plays a transcoded stream's multivariant playlist and switches to its rendition and back", async () => {
    const whilePlaying = async (page: Page) => {
      // hls.js orders the variants by bandwidth.
      expect(await page.evaluate<number[]>('window.hls.levels.map((level) => level.height)')).toEqual([180, 360]);
      const playing = () => page.evaluate<number>('window.hls.levels[window.hls.currentLevel]?.height ?? 0');
      for (const height of [180, 360]) {
        await page.evaluate(`window.hls.currentLevel = window.hls.levels.findIndex((level) => level.height === ${height})`);
        await expect.poll(playing, { timeout: 30_000, interval: 250 }).toBe(height);
        const before = await page.evaluate<number>("document.getElementById('v').currentTime");
        await expect
          .poll(() => page.evaluate<number>("document.getElementById('v').currentTime"), { timeout: 15_000, interval: 250 })
          .toBeGreaterThan(before + 1);
      }
    };
    await playsFor('abr', { playlist: 'master.m3u8', streams: ['rtmp/abr/web_180p'], whilePlaying });
    expect(browser.problems).toEqual([]);
  });
});

/** The audio of the gap clip has no frame from `start` to `end` (seconds): an encoder's muted source. */
const GAP = { start: 5, end: 10, seconds: 16 };

/**
 * The audio codecs of the gap clip: the ffmpeg encoder and its options, how
 * long a frame of the clip's 44.1 kHz lasts (s), the most bytes a silent
 * frame takes (AAC's a few, 21 in 5.1; MP3's 104 at 32 kbit/s), where the
 * 440 Hz tone takes far more (about 370 AAC, 417 MP3 at 128 kbit/s), the
 * apps it is published to, whether hls.js plays it too, and the format of its
 * recording. ffmpeg's -aac_pce 1 puts 5.1's channels in a program config
 * element (channelConfiguration 0).
 */
const GAP_CODECS = [
  { codec: 'AAC', encoder: ['aac'], frameSeconds: 1024 / 44_100, silentBytes: 32, apps: ['gap', 'gapll'], hlsJs: true, recording: 'flv' },
  {
    codec: 'MP3',
    encoder: ['libmp3lame'],
    frameSeconds: 1152 / 44_100,
    silentBytes: 104,
    apps: ['gapmp3', 'gapmp3ll'],
    hlsJs: false,
    recording: 'flv',
  },
  {
    codec: '5.1 AAC with a program config element',
    encoder: ['aac', '-aac_pce', '1', '-ac', '6'],
    frameSeconds: 1024 / 44_100,
    silentBytes: 32,
    apps: ['gappce'],
    hlsJs: false,
    recording: 'fmp4',
  },
] as const;
type GapCodec = (typeof GAP_CODECS)[number];

/** The test pattern with the audio frames of the gap dropped (aselect keeps the others' timestamps), as FLV. */
const audioGapClip = ({ encoder }: GapCodec): Promise<string> =>
  encodeOnce(`audio-gap-${GAP.start}-${GAP.end}-of-${GAP.seconds}s-${encoder.join('')}.flv`, [
    ...testPatternInputs('320x180'),
    ...['-t', String(GAP.seconds), '-af', `aselect='not(between(t,${GAP.start},${GAP.end}))'`],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', ...encoder, '-f', 'flv'],
  ]);

interface Packet {
  kind: 'audio' | 'video';
  pts: number;
  size: number;
}

/** Every packet ffprobe reads of a file or URL (a playlist with #EXT-X-ENDLIST: all of it). */
async function packets(input: string): Promise<Packet[]> {
  const args = ['-v', 'error', '-show_entries', 'packet=codec_type,pts_time,size', '-of', 'json', input];
  const { code, stdout, stderr } = await runCommand('ffprobe', args, 60_000);
  expect(code, stderr).toBe(0);
  const read = (JSON.parse(stdout) as { packets: { codec_type: 'audio' | 'video'; pts_time: string; size: string }[] }).packets;
  return read.map((p) => ({ kind: p.codec_type, pts: Number(p.pts_time), size: Number(p.size) }));
}

/** What ffmpeg says decoding all of a file or URL, at level error: nothing, for one that decodes cleanly. */
async function decodeErrors(input: string): Promise<string> {
  const { code, stderr } = await runCommand('ffmpeg', ['-v', 'error', '-i', input, '-f', 'null', '-'], 60_000);
  return `${code === 0 ? '' : `exit ${code}\n`}${stderr}`;
}

/** The first audio packet at or after `from` that carries sound: more bytes than a silent frame (GAP_CODECS). */
const firstSound = (all: Packet[], from: number, { silentBytes }: GapCodec): number | undefined =>
  all.find((p) => p.kind === 'audio' && p.pts >= from && p.size > silentBytes)?.pts;

interface PlaybackSample {
  /** Date.now() when it was taken. */
  at: number;
  currentTime: number;
  audioBytes: number;
  ended: boolean;
}

/** Samples the <video> every 200 ms until it ended (the stream did, and hls.js played its last segment). */
async function sampleUntilEnded(page: Page): Promise<PlaybackSample[]> {
  const samples: PlaybackSample[] = [];
  const deadline = Date.now() + 60_000;
  while (!samples.at(-1)?.ended && Date.now() < deadline) {
    const [currentTime, audioBytes, ended] = await page.evaluate<[number, number, boolean]>(
      "(() => { const v = document.getElementById('v'); return [v.currentTime, v.webkitAudioDecodedByteCount, v.ended]; })()",
    );
    samples.push({ at: Date.now(), currentTime, audioBytes, ended });
    await sleep(200);
  }
  return samples;
}

/** The longest wall-clock time (ms) the playhead stood still before the end, and the most it ran ahead of the clock (s: a skip). */
function stallsAndSkips(samples: PlaybackSample[]): { longestStallMs: number; longestSkip: number } {
  let longestStallMs = 0;
  let longestSkip = 0;
  let stillSince = samples[0]!.at;
  for (let i = 1; i < samples.length; i++) {
    const [before, after] = [samples[i - 1]!, samples[i]!];
    if (after.ended) break;
    if (after.currentTime > before.currentTime) stillSince = after.at;
    longestStallMs = Math.max(longestStallMs, after.at - stillSince);
    longestSkip = Math.max(longestSkip, after.currentTime - before.currentTime - (after.at - before.at) / 1000);
  }
  return { longestStallMs, longestSkip };
}

/** Sends the gap clip as read, as an encoder would: ffmpeg's interleaving (10 s by default) would hold the gap's video until audio comes. */
const publishGapClip =
  (clipPath: string) =>
  (url: string): Publisher =>
    // 0.1 s, in microseconds.
    runFfmpeg(['-re', '-i', clipPath, '-c', 'copy', '-max_interleave_delta', '100000', '-f', 'flv', url]);

/**
 * The ended playlist of app/web, as ffprobe and ffmpeg read it, and the
 * stream's recording: one audio track through the gap, no discontinuity,
 * the tone back in place, and nothing either decoder objects to; an fMP4
 * recording has the gap filled, its audio frames back to back.
 */
async function expectPlayedThroughGap(app: string, clipPath: string, gapCodec: GapCodec): Promise<void> {
  const url = server.httpUrl(`/${app}/web/index.m3u8`);
  const playlist = await (await fetch(url)).text();
  expect(playlist).toContain('#EXT-X-ENDLIST');
  // The timestamps never jump: nothing for a discontinuity to mark (RFC 8216 4.3.2.3).
  expect(playlist).not.toContain('#EXT-X-DISCONTINUITY');
  const source = await packets(clipPath);
  const played = await packets(url);
  // ffmpeg reads one audio track through the gap, and the tone comes back within one frame (AAC 23.2 ms, MP3
  // 26.1 ms) and the FLV clock's millisecond of where the publisher put it.
  const soundBack = firstSound(source, GAP.start + 1, gapCodec)!;
  expect(Math.abs(firstSound(played, GAP.start + 1, gapCodec)! - soundBack)).toBeLessThan(gapCodec.frameSeconds + 0.0013);
  const firstPicture = played.find((p) => p.kind === 'video')!.pts;
  expect(source.some((p) => p.kind === 'video' && Math.abs(p.pts - firstPicture) < 0.001)).toBe(true);
  expect(await decodeErrors(url)).toBe('');

  // The recording of the same stream decodes across the gap.
  const dir = `${server.storageDir}/${app}/web`;
  const recordings = (await readdir(dir)).filter((name) => name.endsWith(gapCodec.recording === 'fmp4' ? '.mp4' : '.flv'));
  expect(recordings).toHaveLength(1);
  const recording = `${dir}/${recordings[0]!}`;
  expect(await decodeErrors(recording)).toBe('');
  const recorded = await packets(recording);
  expect(firstSound(recorded, GAP.start + 1, gapCodec)).toBeCloseTo(soundBack, 1);
  if (gapCodec.recording === 'fmp4') expect(longestAudioStep(recorded)).toBeLessThan(gapCodec.frameSeconds + 0.001);
}

/** The longest time (s) from one audio packet to the next. */
function longestAudioStep(all: Packet[]): number {
  const audio = all.filter((p) => p.kind === 'audio').map((p) => p.pts);
  return Math.max(...audio.slice(1).map((pts, i) => pts - audio[i]!));
}

describe.each(GAP_CODECS)('a publisher whose $codec audio pauses for 5 s and comes back', (gapCodec) => {
  beforeAll(async () => {
    // The input really has no audio in the gap (but the encoder's last few frames before it), and audio after it.
    const clip = await packets(await audioGapClip(gapCodec));
    expect(clip.filter((p) => p.kind === 'audio' && p.pts > GAP.start + 0.1 && p.pts < GAP.end)).toEqual([]);
    expect(firstSound(clip, GAP.start + 0.1, gapCodec)! - GAP.end).toBeLessThan(0.1);
  }, 60_000);

  if (!gapCodec.hlsJs) {
    // Chromium's MSE takes MP3 only as audio/mpeg, not in MP4 (isTypeSupported is false for mp4a.6B, mp4a.69,
    // mp4a.40.34 and mp3 in HeadlessChrome 156): hls.js cannot play an MP3 stream's fMP4 there, pause or not.
    // The 5.1 AAC with a program config element is read by ffmpeg alone: hls.js was not tried with it.
    for (const app of gapCodec.apps) {
      it(`plays through it in ffmpeg${app.endsWith('ll') ? ', as Low-Latency HLS' : ''}, with its sound back in place, and records it as ${gapCodec.recording.toUpperCase()}`, async () => {
        const clipPath = await audioGapClip(gapCodec);
        const publisher = publishGapClip(clipPath)(server.rtmpUrl(app, 'web'));
        try {
          await waitForStream(server, `rtmp/${app}/web`, 30_000);
          // Segmenting starts with the first request for the playlist.
          expect((await fetch(server.httpUrl(`/${app}/web/index.m3u8`))).status).toBe(200);
          expect(await publisher.exited).toBe(0);
        } finally {
          publisher.child.kill('SIGKILL');
        }
        await expect
          .poll(async () => (await fetch(server.httpUrl(`/${app}/web/index.m3u8`))).text(), { timeout: 10_000 })
          .toContain('#EXT-X-ENDLIST');
        await expectPlayedThroughGap(app, clipPath, gapCodec);
      }, 120_000);
    }
    return;
  }

  for (const app of gapCodec.apps) {
    const lowLatency = app === 'gapll';
    it(`plays through it in hls.js and ffmpeg${lowLatency ? ', as Low-Latency HLS' : ''}, with its sound back in place, and records it as FLV`, async () => {
      const clipPath = await audioGapClip(gapCodec);
      let samples: PlaybackSample[] = [];
      await playsFor(app, {
        lowLatency,
        publish: publishGapClip(clipPath),
        whilePlaying: async (page) => void (samples = await sampleUntilEnded(page)),
      });
      expect(browser.problems).toEqual([]);
      const last = samples.at(-1)!;
      expect(last.ended).toBe(true);
      // From 2 s before the gap to the end, the picture went on: no stall of 2 s (a hole in the audio stalls
      // the shared buffer), no skip of more than 0.5 s (over such a hole).
      const { longestStallMs, longestSkip } = stallsAndSkips(samples.filter((s) => s.currentTime >= GAP.start - 2));
      expect(longestStallMs).toBeLessThan(2000);
      expect(longestSkip).toBeLessThan(0.5);
      // Sound was decoded again after the gap (Chromium decodes a muted video's audio too).
      const afterGap = samples.find((s) => s.currentTime >= GAP.end + 1)!;
      expect(last.audioBytes).toBeGreaterThan(afterGap.audioBytes);
      await expectPlayedThroughGap(app, clipPath, gapCodec);
    }, 120_000);
  }
});

describe.each(GAP_CODECS.slice(0, 2))('a publisher whose $codec audio pauses for 5 s, in MPEG-TS segments', (gapCodec) => {
  // Without the silence mpegts/segmenter.ts writes into the pause, hls.js stalls at its start for good.
  it('plays through it in hls.js, with sound after it, and ffmpeg decodes it', async () => {
    const app = gapCodec.codec === 'AAC' ? 'gapts' : 'gapmp3ts';
    let samples: PlaybackSample[] = [];
    await playsFor(app, {
      publish: publishGapClip(await audioGapClip(gapCodec)),
      whilePlaying: async (page) => void (samples = await sampleUntilEnded(page)),
    });
    expect(browser.problems).toEqual([]);
    expect(samples.at(-1)!.ended).toBe(true);
    const { longestStallMs, longestSkip } = stallsAndSkips(samples.filter((s) => s.currentTime >= GAP.start - 2));
    expect(longestStallMs).toBeLessThan(2000);
    expect(longestSkip).toBeLessThan(0.5);
    const afterGap = samples.find((s) => s.currentTime >= GAP.end + 1)!;
    expect(samples.at(-1)!.audioBytes).toBeGreaterThan(afterGap.audioBytes);
    const url = server.httpUrl(`/${app}/web/index.m3u8`);
    const playlist = await (await fetch(url)).text();
    expect(playlist).toContain('#EXT-X-ENDLIST');
    expect(playlist).not.toContain('#EXT-X-DISCONTINUITY');
    expect(await decodeErrors(url)).toBe('');
  }, 120_000);
});
