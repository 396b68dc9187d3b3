// MPEG audio of any layer in FLV's MP3 tags (SoundFormat 2): FLV's MP3 carries
// any layer, each frame's header describing it, but ffmpeg 5.1's flv muxer
// refuses mp2 ("not compatible with flv") and any rate but 44.1, 22.05 and
// 11.025 kHz. ffmpeg encodes the tone alone; ffprobe says where each of its
// frames lies; the tags are made here.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { FlvTagRecord } from '../../src/flv/demux.ts';
import { encodeOnce } from './clips.ts';
import { lavfiClip, readFlvFile } from './flv-fixture.ts';

const run = promisify(execFile);

/** SoundFormat 2 (MP3), flagged 22 kHz, 16-bit, mono: the hub reads each frame's own header, not these flags. */
const MP3_TAG_HEADER = 0x2a;

/**
 * The test pattern's video (H.264, a keyframe a second) for `seconds`, and
 * the test tone encoded by ffmpeg with `audioArgs` (e.g. -c:a mp2 -ar 24000)
 * as MPEG audio frames, each in an FLV MP3 tag at its own time; in time order.
 */
export async function mpegAudioClipTags(seconds: number, audioArgs: string[]): Promise<FlvTagRecord[]> {
  const video = await readFlvFile(await lavfiClip({ width: 320, height: 180, seconds }));
  const audio = await mpegAudioTags(seconds, audioArgs);
  const tags = [...video.tags.filter((tag) => tag.kind === 'video'), ...audio];
  return tags.sort((a, b) => a.timestamp - b.timestamp);
}

/** The tone encoded alone to an elementary MPEG audio stream, cut into frames where ffprobe finds them. */
async function mpegAudioTags(seconds: number, audioArgs: string[]): Promise<FlvTagRecord[]> {
  const name = `sine-${seconds}s_${audioArgs.join('_').replace(/[^\w.=-]/g, '_')}.mpa`;
  const path = await encodeOnce(name, ['-f', 'lavfi', '-i', 'sine=frequency=440', '-t', String(seconds), ...audioArgs, '-f', 'mp2']);
  const bytes = await readFile(path);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts_time,pos,size', '-of', 'json', path]);
  const { packets } = JSON.parse(stdout) as { packets: { pts_time: string; pos: string; size: string }[] };
  return packets.map((packet) => {
    const start = Number(packet.pos);
    const frame = bytes.subarray(start, start + Number(packet.size));
    return {
      kind: 'audio',
      timestamp: Math.round(Number(packet.pts_time) * 1000),
      body: Buffer.concat([Buffer.from([MP3_TAG_HEADER]), frame]),
    };
  });
}
