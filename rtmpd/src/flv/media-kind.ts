// What a media message carries, in the hub, in FLV files and on RTMP alike:
// one name for it everywhere.

export type MediaKind = 'audio' | 'video' | 'data';

/** The FLV TagType of each kind (RTMP's message types share the numbers). */
export const FLV_TAG_TYPE: Readonly<Record<MediaKind, number>> = { audio: 8, video: 9, data: 18 };

export function mediaKindOfTagType(type: number): MediaKind | undefined {
  return type === 8 ? 'audio' : type === 9 ? 'video' : type === 18 ? 'data' : undefined;
}
