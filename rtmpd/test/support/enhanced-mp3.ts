// MP3 over Enhanced RTMP (ExAudioTagHeader, FourCC '.mp3', CodedFrames only:
// Enhanced RTMP v2 gives MP3 no SequenceStart, each frame's own header
// describes it). ffmpeg 5.1 cannot send it: tests re-head ffmpeg's legacy
// MP3 tags here.
import type { FlvTagRecord } from '../../src/flv/demux.ts';

const SOUND_FORMAT_EX_HEADER = 9;
const PACKET_CODED_FRAMES = 1;
const FOURCC_MP3 = Buffer.from('.mp3', 'latin1');

/** A legacy MP3 tag (SoundFormat 2) as Enhanced RTMP's '.mp3' CodedFrames, its frame unchanged; any other tag as it is. */
export function asEnhancedMp3(tag: FlvTagRecord): FlvTagRecord {
  if (tag.kind !== 'audio' || tag.body[0]! >> 4 !== 2) return tag;
  const header = Buffer.from([(SOUND_FORMAT_EX_HEADER << 4) | PACKET_CODED_FRAMES]);
  return { ...tag, body: Buffer.concat([header, FOURCC_MP3, tag.body.subarray(1)]) };
}
