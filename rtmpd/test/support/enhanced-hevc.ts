// HEVC over Enhanced RTMP, built from a real libx265 bitstream: ffmpeg 5.1
// cannot mux HEVC into FLV or RTMP, so tests encode Annex-B and wrap it here
// the way OBS 30+ sends it (ExVideoTagHeader, FourCC 'hvc1', SequenceStart
// with an HEVCDecoderConfigurationRecord, then CodedFrames).
import { readFile } from 'node:fs/promises';
import { encodeOnce, testPatternInputs } from './clips.ts';

const NAL_VPS = 32;
const NAL_SPS = 33;
const NAL_PPS = 34;
const NAL_AUD = 35;
const PACKET_SEQUENCE_START = 0;
const PACKET_CODED_FRAMES = 1;
const FRAME_KEY = 1;
const FRAME_INTER = 2;

export interface VideoTag {
  timestamp: number;
  /** The RTMP video message body (= FLV video tag body). */
  body: Buffer;
}

/** Encodes `seconds` of the test pattern with libx265 (no B-frames, an AUD per picture); returns the Annex-B path. */
export function hevcAnnexB(width: number, height: number, seconds: number): Promise<string> {
  return encodeOnce(`testsrc2-${width}x${height}-${seconds}s.hevc`, [
    ...testPatternInputs(`${width}x${height}`, { audio: false }),
    '-t',
    String(seconds),
    '-c:v',
    'libx265',
    '-preset',
    'ultrafast',
    '-x265-params',
    'log-level=error:aud=1:bframes=0:keyint=25',
    '-f',
    'hevc',
  ]);
}

/** Turns an Annex-B HEVC file into Enhanced RTMP video messages: SequenceStart, then one CodedFrames per picture. */
export async function enhancedHevcTags(annexBPath: string, fps = 25): Promise<VideoTag[]> {
  const nals = splitAnnexB(await readFile(annexBPath));
  const parameterSets = new Map<number, Buffer>();
  const pictures: Buffer[][] = [];
  for (const nal of nals) {
    const type = (nal[0]! >> 1) & 0x3f;
    if (type === NAL_AUD) pictures.push([]);
    else if (type === NAL_VPS || type === NAL_SPS || type === NAL_PPS) parameterSets.set(type, nal);
    else pictures.at(-1)?.push(nal);
  }
  const [vps, sps, pps] = [NAL_VPS, NAL_SPS, NAL_PPS].map((type) => parameterSets.get(type));
  if (!vps || !sps || !pps) throw new Error(`${annexBPath} lacks VPS/SPS/PPS`);
  const tags: VideoTag[] = [{ timestamp: 0, body: Buffer.concat([exHeader(FRAME_KEY, PACKET_SEQUENCE_START), hvcC(vps, sps, pps)]) }];
  pictures.forEach((picture, i) => {
    const irap = picture.some((nal) => {
      const type = (nal[0]! >> 1) & 0x3f;
      return type >= 16 && type <= 21;
    });
    const lengthPrefixed = picture.flatMap((nal) => [u32(nal.length), nal]);
    const compositionTime = Buffer.alloc(3);
    tags.push({
      timestamp: Math.round((i * 1000) / fps),
      body: Buffer.concat([exHeader(irap ? FRAME_KEY : FRAME_INTER, PACKET_CODED_FRAMES), compositionTime, ...lengthPrefixed]),
    });
  });
  return tags;
}

function exHeader(frameType: number, packetType: number): Buffer {
  return Buffer.concat([Buffer.from([0x80 | (frameType << 4) | packetType]), Buffer.from('hvc1', 'latin1')]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function splitAnnexB(data: Buffer): Buffer[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts.map((start, n) => {
    let end = n + 1 < starts.length ? starts[n + 1]! - 3 : data.length;
    while (end > start && data[end - 1] === 0) end--; // the leading zero of a 4-byte start code
    return data.subarray(start, end);
  });
}

/** HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) from the SPS's profile_tier_level. */
function hvcC(vps: Buffer, sps: Buffer, pps: Buffer): Buffer {
  // RBSP without emulation prevention; PTL starts after the 2-byte NAL header and 1 byte of ids.
  const rbsp = withoutEmulationPrevention(sps.subarray(0, 32));
  const ptl = rbsp.subarray(3, 15); // profile byte, 4 compatibility, 6 constraint, level
  const header = Buffer.from([
    1,
    ...ptl,
    0xf0,
    0x00, // min_spatial_segmentation_idc
    0xfc, // parallelismType
    0xfd, // chroma_format_idc 1 (4:2:0)
    0xf8,
    0xf8, // 8-bit luma and chroma
    0x00,
    0x00, // avgFrameRate unknown
    0x0f, // one temporal layer, nested, 4-byte NAL lengths
    3,
  ]);
  const arrays = [vps, sps, pps].map((nal) => {
    const head = Buffer.alloc(5);
    head[0] = 0x80 | ((nal[0]! >> 1) & 0x3f);
    head.writeUInt16BE(1, 1);
    head.writeUInt16BE(nal.length, 3);
    return Buffer.concat([head, nal]);
  });
  return Buffer.concat([header, ...arrays]);
}

function withoutEmulationPrevention(nal: Buffer): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const byte of nal) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}
