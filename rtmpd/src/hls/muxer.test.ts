import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { lavfiClip, readFlvFile } from '../../test/support/flv-fixture.ts';
import type { FlvTagRecord } from '../flv/demux.ts';
import { StreamHub } from '../hub/hub.ts';
import type { Stream } from '../hub/stream.ts';
import { HlsMuxer } from './muxer.ts';

const run = promisify(execFile);
let hub: StreamHub;
afterEach(() => hub?.closeAll());

function push(stream: Stream, tags: FlvTagRecord[]): void {
  for (const tag of tags) {
    if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, performance.now());
    else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, performance.now());
  }
}

/** The muxer's segments after its last init section, as one file: what a player of its playlist decodes. */
function lastInitFile(muxer: HlsMuxer): Buffer {
  const parts: Buffer[] = [];
  for (let msn = 0; muxer.segment(msn); msn++) parts.push(muxer.segment(msn)!);
  let initId = 0;
  while (muxer.init(initId + 1)) initId++;
  return Buffer.concat([muxer.init(initId)!, ...parts]);
}

async function audioPackets(file: Buffer): Promise<{ codec: string; packets: number; start: number }> {
  const path = join(await mkdtemp(join(tmpdir(), 'rtmpd-hls-')), 'out.mp4');
  await writeFile(path, file);
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-count_packets', '-select_streams', 'a', '-show_entries', 'stream=codec_name,nb_read_packets,start_time'],
    ...['-of', 'json', path],
  ]);
  const [audio] = (JSON.parse(stdout) as { streams: { codec_name: string; nb_read_packets: string; start_time: string }[] }).streams;
  return { codec: audio!.codec_name, packets: Number(audio!.nb_read_packets), start: Number(audio!.start_time) };
}

describe('HlsMuxer', () => {
  it('joining in a GOP where the audio switched from AAC to MP3, labels only the MP3 as MP3: the AAC before has no description', async () => {
    const clip = async (audioCodec: string) =>
      (await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds: 6, audioCodec: ['-c:a', audioCodec] }))).tags;
    const [aac, mp3] = await Promise.all([clip('aac'), clip('libmp3lame')]);
    // Keyframes every second; AAC to 2.5 s, MP3 after. The muxer joins at 2.9 s: the cached GOP (from 2 s) holds both.
    const tags = [
      ...aac.filter((t) => t.kind === 'video' || (t.kind === 'audio' && t.timestamp < 2500)),
      ...mp3.filter((t) => t.kind === 'audio' && t.timestamp >= 2500),
    ].sort((a, b) => a.timestamp - b.timestamp);
    hub = new StreamHub({ gopCacheMaxBytes: 4 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 5000 });
    const stream = hub.publish('live', 'switch', { protocol: 'rtmp', remoteAddress: '127.0.0.1:50000', close: () => undefined });
    push(
      stream,
      tags.filter((t) => t.timestamp < 2900),
    );
    const muxer = new HlsMuxer({ lowLatency: false, segmentSeconds: 2, partSeconds: 0.5, windowSegments: 10, maxBytes: 64 << 20 });
    stream.subscribe(muxer, performance.now());
    push(
      stream,
      tags.filter((t) => t.timestamp >= 2900),
    );
    hub.closeAll();
    const probed = await audioPackets(lastInitFile(muxer));
    // The AAC frames from 2 s must not go into the MP3 track.
    expect(probed).toEqual({
      codec: 'mp3',
      packets: mp3.filter((t) => t.kind === 'audio' && t.timestamp >= 2500).length,
      start: expect.closeTo(2.5, 1),
    });
  });
});
