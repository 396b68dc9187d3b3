// Fixture builder run by generate.sh (Node 24 strips the types): not used by the tests.
//   node fixtures.ts enhanced <out.flv> <video-src> <audio-src> <video-fourcc> <audio-fourcc>
//     builds an Enhanced RTMP FLV from ffprobe's packet dump of two sources and
//     writes <out>.keyframes.json (presentation timestamps, ms, of frames ffprobe marks key_frame=1)
//   node fixtures.ts keyframes <file.flv>
//     writes <file>.keyframes.json for an FLV ffprobe can read itself
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { FLV_FILE_HEADER, flvTag } from '../mux.ts';

interface Packet {
  pts: number;
  dts: number;
  flags: string;
  data: Buffer;
}

function hexdump(text: string): Buffer {
  const bytes: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} )+)/.exec(line);
    if (m) bytes.push(m[1]!.replaceAll(' ', ''));
  }
  return Buffer.from(bytes.join(''), 'hex');
}

function probe(file: string, args: string[]): Record<string, unknown> {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-of', 'json', ...args, file], { maxBuffer: 1 << 28 }).toString());
}

function ms(value: number, timeBase: string): number {
  const [num, den] = timeBase.split('/').map(Number);
  return Math.round((value * 1000 * num!) / den!);
}

function stream(file: string): { extradata: Buffer; packets: Packet[] } {
  const p = probe(file, ['-select_streams', '0', '-show_streams', '-show_packets', '-show_data']) as {
    streams: { extradata: string; time_base: string }[];
    packets: { pts: number; dts: number; flags: string; data: string }[];
  };
  const s = p.streams[0]!;
  const packets = p.packets.map((k) => ({
    pts: ms(k.pts, s.time_base),
    dts: ms(k.dts, s.time_base),
    flags: k.flags,
    data: hexdump(k.data),
  }));
  return { extradata: hexdump(s.extradata), packets };
}

function keyframeTimes(file: string, shift: number): number[] {
  // Presentation timestamps: a frame's pkt_dts is that of the packet fed when it left the
  // decoder (shifted by the B-frame delay), so match on pts = tag timestamp + composition time.
  const p = probe(file, ['-select_streams', 'v:0', '-show_streams', '-show_entries', 'frame=pts,key_frame']) as {
    streams: { time_base: string }[];
    frames: { pts: number; key_frame: number }[];
  };
  const tb = p.streams[0]!.time_base;
  return p.frames.filter((f) => f.key_frame === 1).map((f) => ms(f.pts, tb) - shift);
}

function enhanced(out: string, videoSrc: string, audioSrc: string, videoFourcc: string, audioFourcc: string): void {
  const video = stream(videoSrc);
  const audio = stream(audioSrc);
  const shift = Math.min(video.packets[0]!.dts, audio.packets[0]!.dts);
  const vfcc = Buffer.from(videoFourcc, 'latin1');
  const afcc = Buffer.from(audioFourcc, 'latin1');
  const tags: { ts: number; order: number; buf: Buffer }[] = [];
  tags.push({ ts: 0, order: 0, buf: flvTag('video', 0, Buffer.concat([Buffer.from([0x90]), vfcc, video.extradata])) });
  tags.push({ ts: 0, order: 1, buf: flvTag('audio', 0, Buffer.concat([Buffer.from([0x90]), afcc, audio.extradata])) });
  const hasCts = videoFourcc === 'avc1' || videoFourcc === 'hvc1';
  for (const p of video.packets) {
    const ts = p.dts - shift;
    const frameType = p.flags.includes('K') ? 1 : 2;
    const cts = p.pts - p.dts;
    let header: Buffer;
    if (hasCts && cts !== 0) {
      header = Buffer.alloc(8);
      header[0] = 0x80 | (frameType << 4) | 1; // CodedFrames
      vfcc.copy(header, 1);
      header.writeIntBE(cts, 5, 3);
    } else {
      header = Buffer.concat([Buffer.from([0x80 | (frameType << 4) | (hasCts ? 3 : 1)]), vfcc]); // CodedFramesX / CodedFrames
    }
    tags.push({ ts, order: 2, buf: flvTag('video', ts, Buffer.concat([header, p.data])) });
  }
  for (const p of audio.packets) {
    const ts = p.dts - shift;
    tags.push({ ts, order: 2, buf: flvTag('audio', ts, Buffer.concat([Buffer.from([0x91]), afcc, p.data])) });
  }
  const last = Math.max(...tags.map((t) => t.ts));
  tags.push({ ts: last, order: 3, buf: flvTag('video', last, Buffer.concat([Buffer.from([0x82]), vfcc])) });
  tags.sort((a, b) => a.ts - b.ts || a.order - b.order);
  writeFileSync(out, Buffer.concat([FLV_FILE_HEADER(true, true), ...tags.map((t) => t.buf)]));
  writeFileSync(out.replace(/\.flv$/, '.keyframes.json'), JSON.stringify(keyframeTimes(videoSrc, shift)) + '\n');
}

const [command, ...args] = process.argv.slice(2);
if (command === 'enhanced') {
  enhanced(args[0]!, args[1]!, args[2]!, args[3]!, args[4]!);
} else if (command === 'keyframes') {
  writeFileSync(args[0]!.replace(/\.flv$/, '.keyframes.json'), JSON.stringify(keyframeTimes(args[0]!, 0)) + '\n');
} else {
  throw new Error(`unknown command ${command}`);
}
