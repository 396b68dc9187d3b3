import { keyframeToAnnexB, keyframeToIvf } from '../codec/annexb.ts';
import { inspectVideo } from '../flv/tag.ts';
import type { Stream } from '../hub/stream.ts';
import type { KeyframeFormat } from './decoder.ts';

export interface StandaloneKeyframe {
  format: KeyframeFormat;
  /** Parameter sets + the keyframe, decodable on its own. */
  data: Buffer;
  /** Which keyframe of the stream this is (Stream.keyframeSeq). */
  seq: number;
  /** File extension of the raw keyframe kept on disk. */
  extension: string;
}

export type KeyframeProblem = 'no_video' | 'no_keyframe' | 'unsupported_codec';

/**
 * Turns the stream's last keyframe and its decoder configuration into a
 * standalone elementary stream ffmpeg can decode, or says what is missing.
 */
export function standaloneKeyframe(stream: Stream): StandaloneKeyframe | KeyframeProblem {
  const { videoHeader, lastKeyframe } = stream;
  if (!videoHeader) return 'no_video';
  if (!lastKeyframe) return 'no_keyframe';
  const config = inspectVideo(videoHeader.body);
  const frame = inspectVideo(lastKeyframe.body, stream.videoTrack?.nalLengthSize ?? 4);
  const seq = stream.keyframeSeq;
  switch (config.codec) {
    case 'h264':
    case 'hevc':
      return { format: config.codec, data: keyframeToAnnexB(config.codec, config.data, frame.data), seq, extension: config.codec };
    case 'av1':
      return { format: 'ivf', data: keyframeToIvf(config.data, frame.data), seq, extension: 'ivf' };
    case 'vp9':
      return 'unsupported_codec';
  }
}
