// What a pod reports in its Lease: the publishers and players it serves, which
// the operator sums into the RtmpServer's status (per pod and in total).
import type { HlsServer } from '../hls/server.ts';
import type { StreamHub } from '../hub/hub.ts';

export interface PodLoad {
  /** Publishers here, relays from the other pods not counted. */
  publishers: number;
  /** RTMP, HTTP-FLV and HLS players here (HLS estimated as the stream view does: clients polling the playlist). */
  players: number;
}

export function podLoad(hub: StreamHub, hls: Pick<HlsServer, 'players'> | undefined): PodLoad {
  let publishers = 0;
  let players = 0;
  for (const stream of hub.list()) {
    if (stream.publisher.protocol !== 'relay') publishers++;
    players += stream.playerCount + (hls?.players(stream) ?? 0);
  }
  return { publishers, players };
}
