// MPEG audio other than Layer III over RTMP (FLV's MP3 carries any layer):
// its frames are timed by their own layer and version in the recording and
// in both HLS variants, as ffprobe reads them.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordingView } from '../src/http/recordings-api.ts';
import type { FlvTagRecord } from '../src/flv/demux.ts';
import { mpegAudioClipTags } from './support/mpeg-audio.ts';
import { metric, startServer, stopAll, type RunningServer } from './support/processes.ts';
import { RtmpClient } from './support/rtmp-client.ts';
import { eventually } from './support/wait.ts';

const run = promisify(execFile);
let server: RunningServer;

beforeAll(async () => {
  server = await startServer([
    ...['--hls-segment-seconds', '1', '--hls-window-segments', '100'],
    ...['--hls-rules', JSON.stringify([{ app: 'ts', variant: 'mpegts' }])],
    ...['--recording-segment-seconds', '3600', '--snapshot-enabled', 'false'],
  ]);
});

afterAll(async () => {
  await server?.stop();
  stopAll();
});

/**
 * The audio ffprobe reads in `input`: its codec, its duration where it reads
 * one (a file's, from the trun sample durations), and its packets' times from
 * the first's. Not their durations: in fragmented MP4, ffmpeg (5.1) gives a
 * packet none of the trun's but guesses one from the codec it names, mp3
 * (576 samples at 24 kHz and below, Layer III's, where a Layer II frame has
 * 1152), so the last packet's end would be half a frame short of what the
 * file says.
 */
async function audioPackets(input: string): Promise<{ codec: string; duration: number | undefined; times: number[] }> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'a'],
    ...['-show_entries', 'stream=codec_name,duration:packet=pts_time', '-of', 'json', input],
  ]);
  const { streams, packets } = JSON.parse(stdout) as {
    streams: { codec_name: string; duration?: string }[];
    packets: { pts_time: string }[];
  };
  const first = Number(packets[0]!.pts_time);
  const { codec_name: codec, duration } = streams[0]!;
  return {
    codec,
    duration: duration === undefined ? undefined : Number(duration),
    times: packets.map((packet) => Number(packet.pts_time) - first),
  };
}

/**
 * Publishes `tags` as app/key and has HLS segment all of it: the first GOP is
 * sent, a playlist asked for (HLS starts on the first request, from the GOP
 * cache), the rest sent once its segmenter is there; returns once the stream
 * has ended and the playlist says so.
 */
async function publishWithHls(app: string, key: string, tags: FlvTagRecord[], segmenters: number): Promise<void> {
  const client = await RtmpClient.connect(server.rtmpUrl(app, key));
  await client.publish();
  const send = (tag: FlvTagRecord) =>
    tag.kind === 'video' ? client.sendVideo(tag.timestamp, tag.body) : client.sendAudio(tag.timestamp, tag.body);
  const secondGop = tags.findIndex((tag) => tag.kind === 'video' && tag.timestamp > 0 && (tag.body[0]! & 0xf0) === 0x10);
  tags.slice(0, secondGop).forEach(send);
  const playlist = server.httpUrl(`/${app}/${key}/index.m3u8`);
  const firstRequest = fetch(playlist);
  await eventually(`${segmenters} HLS segmenters`, async () => (await metric(server, 'rtmpd_hls_streams')) === segmenters, 10_000);
  tags.slice(secondGop).forEach(send);
  await client.unpublish();
  client.close();
  expect((await firstRequest).status).toBe(200);
  await eventually('the playlist ended', async () => (await (await fetch(playlist)).text()).includes('#EXT-X-ENDLIST'), 10_000);
}

async function finishedRecordings(streamId: string): Promise<RecordingView[]> {
  const res = await fetch(server.httpUrl(`/api/v1/rtmp/recordings?stream_id=${encodeURIComponent(streamId)}`));
  const { recordings } = (await res.json()) as { recordings: RecordingView[] };
  return recordings.every((recording) => !recording.recording) ? recordings : [];
}

describe('MPEG audio Layer II at 24 kHz (MPEG-2: 1152 samples a frame, where Layer III has 576) in FLV MP3 tags', () => {
  it('has every frame in the recording and in HLS fMP4 and MPEG-TS, each 48 ms after the one before', async () => {
    const tags = await mpegAudioClipTags(6, ['-c:a', 'mp2', '-ar', '24000', '-ac', '1']);
    const frames = tags.filter((tag) => tag.kind === 'audio').length;
    const frameSeconds = 1152 / 24_000;

    await publishWithHls('live', 'layer2', tags, 1);
    await publishWithHls('ts', 'layer2', tags, 2);
    let recordings: RecordingView[] = [];
    await eventually('the recording finished', async () => (recordings = await finishedRecordings('rtmp/live/layer2')).length > 0, 15_000);
    expect(recordings).toHaveLength(1);

    const outputs = {
      recording: await audioPackets(join(server.storageDir, recordings[0]!.id)),
      'HLS fMP4': await audioPackets(server.httpUrl('/live/layer2/index.m3u8')),
      'HLS MPEG-TS': await audioPackets(server.httpUrl('/ts/layer2/index.m3u8')),
    };
    for (const [output, audio] of Object.entries(outputs)) {
      // MP4's MPEG audio (object type 0x69) names no layer: ffmpeg calls it mp3, and its decoder reads the layer from each frame.
      expect(audio.codec, output).toBe(output === 'HLS MPEG-TS' ? 'mp2' : 'mp3');
      // Every frame from the first keyframe on (the first comes with the first audio), none dropped, each at its
      // place: within MPEG-TS's 90 kHz clock (ffprobe prints microseconds), so the whole lasts as long as was sent.
      const misplaced = audio.times.filter((time, i) => Math.abs(time - i * frameSeconds) > 1e-5);
      expect(audio.times, output).toHaveLength(frames);
      expect(misplaced, `${output}: frames not 48 ms apart`).toEqual([]);
    }
    // Its last frame lasts 48 ms too, as the file says (HLS's playlist makes ffprobe read no duration).
    expect(outputs.recording.duration).toBeCloseTo(frames * frameSeconds, 5);
  }, 60_000);
});
