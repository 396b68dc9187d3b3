// The fleet-wide answers of the stream API, the same on every pod: every
// stream that has an owner (directory.ts owner(), the pod its players here
// are relayed from), described by that pod, with the players of every pod
// added up (a relayed stream's players are counted where they watch). The
// list follows owner(), not what this pod saw renewed lately: every present
// pod is asked for its streams, in parallel, and its answer decides, so a
// stream that plays from every pod is listed on every pod while the API
// server falls behind. A pod that does not answer leaves the streams it owns
// listed from their claims alone, while its Lease exists. The merged list is
// kept for a second, so a console polling many pods costs one round of
// requests per second; the clients of that second share it, so no one
// client's leaving cuts its requests.
import type { StreamView } from '../http/stream-view.ts';
import type { FleetStreams, ForwardedAnswer } from '../http/streams-api.ts';
import { streamId as idOf } from '../hub/names.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { FleetDirectory } from './directory.ts';
import { fleetGet } from './peer-http.ts';
import type { ClaimRecord } from './records.ts';
import { FLEET_PREFIX, podStreamsSchema, type PodStreams } from './wire.ts';

export interface CatalogOptions {
  directory: FleetDirectory;
  identity: string;
  token: string;
  /** This pod's own streams, without a request. */
  local: () => PodStreams;
  log: Logger;
  timeoutMs?: number;
}

const CACHE_MS = 1000;

/** A stream known only from its claim (its owner did not answer): what the claim says, the rest unknown. */
function fromClaim(claim: ClaimRecord, pod: string): StreamView {
  const [, app = '', key = ''] = claim.streamId.split('/');
  return {
    stream_id: claim.streamId,
    app,
    key,
    start_time: claim.acquireTime.replace(/\.\d+Z$/, 'Z'),
    video: null,
    audio: null,
    bitrate_kbps: 0,
    bytes_in: 0,
    video_frames: 0,
    keyframes: 0,
    dropped_frames: 0,
    players: { rtmp: 0, http_flv: 0, hls: 0, total: 0 },
    hls_url: null,
    recording: false,
    recording_state: 'off',
    recording_left_out: [],
    publisher: { protocol: claim.protocol, remote_address: '' },
    owner: { pod },
    forwards: [],
    transcode: null,
    transcoded_from: null,
  };
}

export class FleetCatalog implements FleetStreams {
  private readonly o: Required<CatalogOptions>;
  private cached: { at: number; list: Promise<StreamView[]> } | undefined;

  constructor(o: CatalogOptions) {
    this.o = { timeoutMs: 2000, ...o };
  }

  list(): Promise<StreamView[]> {
    const now = performance.now();
    if (!this.cached || now - this.cached.at > CACHE_MS) this.cached = { at: now, list: this.gather() };
    return this.cached.list;
  }

  async snapshot(app: string, key: string, signal: AbortSignal): Promise<ForwardedAnswer | undefined> {
    const owner = this.o.directory.owner(idOf(app, key));
    if (!owner || owner.claim.identity === this.o.identity) return undefined;
    const path = `${FLEET_PREFIX}/snapshot/${encodeURIComponent(app)}/${encodeURIComponent(key)}`;
    // A decode may queue behind others on the owner: give it the snapshot service's own patience.
    return fleetGet(owner.pod.httpAddress, path, { token: this.o.token, timeoutMs: 15_000, signal });
  }

  private async gather(): Promise<StreamView[]> {
    const { directory, identity } = this.o;
    const pods = directory.presentPods();
    const answers = await Promise.all(
      pods.map(async (pod): Promise<[string, PodStreams | undefined]> => {
        if (pod.identity === identity) return [pod.identity, this.o.local()];
        const got = await fleetGet(pod.httpAddress, `${FLEET_PREFIX}/streams`, { token: this.o.token, timeoutMs: this.o.timeoutMs });
        if (got?.status !== 200) {
          this.o.log.debug({ pod: pod.pod, status: got?.status }, 'fleet: a pod did not list its streams');
          return [pod.identity, undefined];
        }
        try {
          return [pod.identity, podStreamsSchema.parse(JSON.parse(got.body.toString('utf8')))];
        } catch (err) {
          this.o.log.warn({ pod: pod.pod, err: (err as Error).message }, 'fleet: a pod answered a malformed stream list');
          return [pod.identity, undefined];
        }
      }),
    );
    const byPod = new Map(answers);
    const views: StreamView[] = [];
    for (const claim of directory.claims()) {
      const owner = directory.owner(claim.streamId)?.pod;
      if (!owner) continue;
      const answer = byPod.get(claim.identity);
      const own = answer?.streams.find((s) => !s.relayed && s.view.stream_id === claim.streamId)?.view;
      // The owner answered without it: claimed, not (or no longer) published.
      if (answer && !own) continue;
      const view: StreamView = own ? { ...own, owner: { pod: owner.pod } } : fromClaim(claim, owner.pod);
      const players = { rtmp: 0, http_flv: 0, hls: 0, total: 0 };
      for (const other of byPod.values()) {
        const seen = other?.streams.find((s) => s.view.stream_id === claim.streamId)?.view.players;
        if (!seen) continue;
        players.rtmp += seen.rtmp;
        players.http_flv += seen.http_flv;
        players.hls += seen.hls;
        players.total += seen.total;
      }
      views.push({ ...view, players });
    }
    return views.sort((a, b) => a.start_time.localeCompare(b.start_time) || a.stream_id.localeCompare(b.stream_id));
  }
}
