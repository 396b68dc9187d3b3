// A player that joins late in a long GOP, seen by clients other than ffmpeg:
// rtmpdump (librtmp, as OBS and many players) over RTMP, GStreamer's
// flvdemux over HTTP-FLV and MediaMTX's RTMP library (gortmplib) over RTMP.
// The publisher is ffmpeg sending a 2 Mbit/s H.264 + MP3 stream with a
// keyframe every 10 s in real time, its timestamps 17 minutes in, as from an
// encoder that has been live for a while (and a copy with AAC audio). Each
// player joins 5 s or more into a GOP (over 1.2 MB) with a 256 KiB queue
// bound: it must get the whole cached GOP and then live media with no gap,
// and the decoder config at the time of its first frame, not at 0.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvDemuxer, type FlvTagRecord } from '../src/flv/demux.ts';
import { lavfiClip } from './support/flv-fixture.ts';
import { runCommand, runFfmpeg, startServer, stopAll, tempDir, waitForStream, type RunningServer } from './support/processes.ts';
import { sleep } from './support/wait.ts';

const OFFSET_MS = 17 * 60 * 1000;
const FRAME_MS = 40;
const GOP_FRAMES = 250;

let server: RunningServer;
let dumped: FlvTagRecord[];
/** The first seconds of the HTTP-FLV response, as tags. */
let httpFlv: FlvTagRecord[];
let gstreamer: string;
/** What gortmplib's Reader found in each stream, one "kind codec" line per track. */
let gortmplibTracks: { mp3: string[]; aac: string[] };

/** rtmpd/test/gortmplib built (once per machine) by hack/go-tool.sh. */
async function buildTrackReader(): Promise<string> {
  const script = fileURLToPath(new URL('../../hack/go-tool.sh', import.meta.url));
  const { code, stdout, stderr } = await runCommand(script, [fileURLToPath(new URL('gortmplib', import.meta.url))], 280_000);
  if (code !== 0) throw new Error(`hack/go-tool.sh failed: ${stderr}`);
  return stdout.trim();
}

/** gortmplib's URL form: the stream key after '#'. */
const gortmplibUrl = (url: string) => url.replace(/\/([^/]+)$/, '#$1');

beforeAll(async () => {
  const trackReader = buildTrackReader();
  const clip = await lavfiClip({
    width: 640,
    height: 360,
    seconds: 24,
    videoFilter: 'noise=alls=30:allf=t',
    videoCodec: [
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-b:v',
      '2M',
      '-maxrate',
      '2M',
      '-bufsize',
      '2M',
      '-x264-params',
      `keyint=${GOP_FRAMES}:min-keyint=${GOP_FRAMES}:scenecut=0`,
    ],
    audioCodec: ['-c:a', 'libmp3lame', '-ac', '1'],
  });
  server = await startServer(['--player-max-buffer-bytes', String(256 * 1024)]);
  const url = server.rtmpUrl('live', 'long-gop');
  const aacUrl = server.rtmpUrl('live', 'long-gop-aac');
  const offset = ['-output_ts_offset', String(OFFSET_MS / 1000)];
  runFfmpeg(['-re', '-i', clip, '-c', 'copy', ...offset, '-f', 'flv', url]);
  runFfmpeg(['-re', '-i', clip, '-c:v', 'copy', '-c:a', 'aac', '-ac', '1', ...offset, '-f', 'flv', aacUrl]);
  await Promise.all([waitForStream(server, 'rtmp/live/long-gop'), waitForStream(server, 'rtmp/live/long-gop-aac')]);
  const readTracks = async (streamUrl: string) => {
    const { code, stdout, stderr } = await runCommand(await trackReader, [gortmplibUrl(streamUrl)], 15_000);
    if (code !== 0) throw new Error(`gortmplib read-tracks of ${streamUrl} exited ${code}: ${stderr}`);
    return stdout.trim().split('\n').sort();
  };
  // 5 s into the first GOP (the stream is listed about a frame after it starts). The players are
  // stopped 14 s into the stream however long they took to start, so each saw the keyframe at 10 s.
  await sleep(5000);
  const dir = await tempDir('rtmpd-long-gop-');
  const out = join(dir, 'rtmpdump.flv');
  const readFlv = async () => {
    const response = await fetch(server.httpUrl('/live/long-gop.flv'), { signal: AbortSignal.timeout(3000) });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of response.body!) chunks.push(Buffer.from(chunk));
    } catch {
      // Cut off after 3 s, mid-tag: the complete tags are what it got.
    }
    return new FlvDemuxer().push(Buffer.concat(chunks));
  };
  const [, gst, mp3, aac, flv] = await Promise.all([
    runCommand('rtmpdump', ['-q', '-v', '-r', url, '-o', out], 9000),
    runCommand(
      'gst-launch-1.0',
      [
        '-v',
        'souphttpsrc',
        `location=${server.httpUrl('/live/long-gop.flv')}`,
        '!',
        'flvdemux',
        'name=d',
        'd.video',
        '!',
        'fakesink',
        'name=v',
        'silent=false',
        'sync=false',
        'async=false',
        'd.audio',
        '!',
        'fakesink',
        'name=a',
        'silent=false',
        'sync=false',
        'async=false',
      ],
      9000,
    ),
    readTracks(url),
    readTracks(aacUrl),
    readFlv(),
  ]);
  httpFlv = flv;
  gstreamer = gst.stdout;
  gortmplibTracks = { mp3, aac };
  // rtmpdump was cut off mid-tag: the complete tags are what it saved.
  dumped = new FlvDemuxer().push(await readFile(out));
}, 300_000);

afterAll(async () => {
  stopAll();
  await server?.stop();
});

/** The stream's first keyframe: ffmpeg starts its timestamps a frame or so past the offset. */
function expectGopStart(timestamp: number): void {
  expect(timestamp).toBeGreaterThanOrEqual(OFFSET_MS);
  expect(timestamp).toBeLessThan(OFFSET_MS + 200);
}

/** Fails with the first hole in a run of video timestamps 40 ms apart. */
function expectNoGap(timestamps: number[]): void {
  const gaps = timestamps.slice(1).flatMap((t, i) => (t - timestamps[i]! > FRAME_MS ? [`${timestamps[i]} -> ${t}`] : []));
  expect(gaps).toEqual([]);
}

describe('a player joining 5 s into a 10 s GOP', () => {
  it('over RTMP (rtmpdump) gets the whole cached GOP, then live media without a gap', () => {
    const video = dumped.filter((t) => t.kind === 'video' && t.body[1] === 1).map((t) => t.timestamp);
    // The GOP started at the stream's first keyframe: 5 s or more cached, then live past the next keyframe.
    expectGopStart(video[0]!);
    expect(video.length).toBeGreaterThan((12 * 1000) / FRAME_MS);
    expect(video.at(-1)! - video[0]!).toBeGreaterThan(GOP_FRAMES * FRAME_MS);
    expectNoGap(video);
  });

  it.each([
    ['RTMP', () => dumped],
    ['HTTP-FLV', () => httpFlv],
  ])('over %s gets the decoder config at the time of its first frame, onMetaData at 0 as FFmpeg wants it', (_, tags) => {
    const received = tags();
    const first = received.slice(0, 3);
    expect(first.map((t) => t.kind)).toEqual(['data', 'video', 'video']);
    const keyframe = received.find((t) => t.kind === 'video' && t.body[1] === 1)!;
    expectGopStart(keyframe.timestamp);
    expect(first.map((t) => t.timestamp)).toEqual([0, keyframe.timestamp, keyframe.timestamp]);
    // MP3 has no sequence header: its first frame follows at its own time.
    const audio = received.find((t) => t.kind === 'audio')!;
    expect(audio.timestamp - first[1]!.timestamp).toBeLessThan(100);
  });

  // gortmplib stops looking for tracks once the audio and video it read span 2 s: with the decoder
  // config at 0 before frames 17 minutes in, it never saw the MP3 track, which has no config message.
  it('over RTMP (gortmplib, as MediaMTX) finds the video track and the MP3 track, or the AAC track', () => {
    expect(gortmplibTracks.mp3).toEqual(['audio MPEG1Audio', 'video H264']);
    expect(gortmplibTracks.aac).toEqual(['audio MPEG4Audio', 'video H264']);
  });

  it('over HTTP-FLV (GStreamer flvdemux) gets the whole GOP without a gap, and finds the MP3 track', () => {
    const times = (pad: string) =>
      [...gstreamer.matchAll(new RegExp(`${pad}:sink\\) \\(\\d+ bytes, dts: (\\d+):(\\d+):([\\d.]+)`, 'g'))].map(([, h, m, s]) =>
        Math.round((Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000),
      );
    const video = times('v');
    expectGopStart(video[0]!);
    expect(video.at(-1)! - video[0]!).toBeGreaterThan(GOP_FRAMES * FRAME_MS);
    expectNoGap(video);
    const audio = times('a');
    expect(audio.length).toBeGreaterThan(100);
    expect(Math.abs(audio[0]! - video[0]!)).toBeLessThan(100);
  });
});
