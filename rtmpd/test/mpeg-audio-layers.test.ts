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

/** Seconds of audio ffprobe reads in `input`: from its first packet's time to its last packet's end; and its packets. */
async function audioSeconds(input: string): Promise<{ codec: string; packets: number; seconds: number }> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'a'],
    ...['-show_entries', 'stream=codec_name:packet=pts_time,duration_time', '-of', 'json', input],
  ]);
  const { streams, packets } = JSON.parse(stdout) as {
    streams: { codec_name: string }[];
    packets: { pts_time: string; duration_time: string }[];
  };
  const last = packets.at(-1)!;
  const seconds = Number(last.pts_time) + Number(last.duration_time) - Number(packets[0]!.pts_time);
  return { codec: streams[0]!.codec_name, packets: packets.length, seconds };
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
  await eventually(async () => (await metric(server, 'rtmpd_hls_streams')) === segmenters, 10_000);
  tags.slice(secondGop).forEach(send);
  await client.unpublish();
  client.close();
  expect((await firstRequest).status).toBe(200);
  await eventually(async () => (await (await fetch(playlist)).text()).includes('#EXT-X-ENDLIST'), 10_000);
}

async function finishedRecordings(streamId: string): Promise<RecordingView[]> {
  const res = await fetch(server.httpUrl(`/api/v1/rtmp/recordings?stream_id=${encodeURIComponent(streamId)}`));
  const { recordings } = (await res.json()) as { recordings: RecordingView[] };
  return recordings.every((recording) => !recording.recording) ? recordings : [];
}

describe('MPEG audio Layer II at 24 kHz (MPEG-2: 1152 samples a frame, where Layer III has 576) in FLV MP3 tags', () => {
  it('lasts as long in the recording and in HLS fMP4 and MPEG-TS as it was sent, to within a frame', async () => {
    const tags = await mpegAudioClipTags(6, ['-c:a', 'mp2', '-ar', '24000', '-ac', '1']);
    const frames = tags.filter((tag) => tag.kind === 'audio').length;
    const frameSeconds = 1152 / 24_000;
    const sent = frames * frameSeconds;

    await publishWithHls('live', 'layer2', tags, 1);
    await publishWithHls('ts', 'layer2', tags, 2);
    let recordings: RecordingView[] = [];
    await eventually(async () => (recordings = await finishedRecordings('rtmp/live/layer2')).length > 0, 15_000);
    expect(recordings).toHaveLength(1);

    const outputs = {
      recording: await audioSeconds(join(server.storageDir, recordings[0]!.id)),
      'HLS fMP4': await audioSeconds(server.httpUrl('/live/layer2/index.m3u8')),
      'HLS MPEG-TS': await audioSeconds(server.httpUrl('/ts/layer2/index.m3u8')),
    };
    for (const [output, audio] of Object.entries(outputs)) {
      // MP4's MPEG audio (object type 0x69) names no layer: ffmpeg calls it mp3, and its decoder reads the layer from each frame.
      expect(audio.codec, output).toBe(output === 'HLS MPEG-TS' ? 'mp2' : 'mp3');
      // Every frame from the first keyframe on (the first comes with the first audio), each 48 ms, none dropped.
      expect(audio.packets, output).toBe(frames);
      expect(Math.abs(audio.seconds - sent), `${output}: ${audio.seconds} s of ${sent} s sent`).toBeLessThan(frameSeconds);
    }
  }, 60_000);
});
