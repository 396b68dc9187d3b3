// FLV tags demuxed from a byte stream, pushed into a live stream of the hub as
// an RTMP publisher's messages are: what a relay from the pod of a fleet that
// owns a stream (fleet/relays.ts) and a transcode's rendition (transcode/pipes.ts) publish.
import type { Stream } from '../hub/stream.ts';
import { isObject, parseData } from '../rtmp/wire/commands.ts';
import { MessageType } from '../rtmp/wire/message-types.ts';
import type { FlvTagRecord } from './demux.ts';

/** Throws on bad AMF, and on what Stream throws on (a bug of ours): the caller ends its publish. */
export function pushFlvTags(stream: Stream, tags: readonly FlvTagRecord[], now: number): void {
  for (const tag of tags) {
    if (tag.kind === 'video') stream.pushVideo(tag.timestamp, tag.body, now);
    else if (tag.kind === 'audio') stream.pushAudio(tag.timestamp, tag.body, now);
    else {
      const [name, values] = parseData(MessageType.dataAmf0, tag.body);
      if (name === 'onMetaData' && values !== undefined && isObject(values))
        stream.setMetadata(tag.timestamp, tag.body, { ...values }, now);
    }
  }
}
