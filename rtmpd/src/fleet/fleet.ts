// rtmpd as one pod of a fleet: the pieces of this folder wired to the hub,
// the RTMP admission step and the HTTP API. app.ts imports this module only
// when --fleet-name is set, so a single server loads none of it (nor the
// Kubernetes client).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Router } from '@koa/router';
import { claimWaitSeconds, ConfigError, type Config } from '../config.ts';
import type { StreamViewSources } from '../http/stream-view.ts';
import type { RecordingStore } from '../http/recording-store.ts';
import type { FleetRecordings } from '../http/recordings-api.ts';
import type { FleetStreams } from '../http/streams-api.ts';
import type { BitrateMeter } from '../hub/bitrate.ts';
import type { StreamHub } from '../hub/hub.ts';
import type { AdmissionCheck } from '../rtmp/server/admission.ts';
import type { SnapshotService } from '../snapshot/service.ts';
import type { RemoteRenditions, Transcodes } from '../transcode/transcodes.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { FleetCounters } from '../telemetry/metrics.ts';
import { streamId } from '../hub/names.ts';
import { AbandonedLeases } from './abandoned.ts';
import { FleetCatalog } from './catalog.ts';
import { StreamClaims, type PublishClaim } from './claims.ts';
import { FleetDirectory } from './directory.ts';
import { kubernetesLeaseApi, type LeaseApi } from './lease-api.ts';
import { podLoad } from './load.ts';
import { Membership } from './membership.ts';
import { answers, fleetGet } from './peer-http.ts';
import { FleetRecordingIndex } from './recordings.ts';
import { Relays } from './relays.ts';
import { fleetRoutes, podStreams } from './routes.ts';
import { FLEET_PREFIX } from './wire.ts';

export type FleetConfig = Pick<
  Config,
  | 'fleetName'
  | 'fleetPodName'
  | 'fleetPodUid'
  | 'fleetNamespace'
  | 'fleetPodIp'
  | 'fleetTokenFile'
  | 'fleetLeaseSeconds'
  | 'idleTimeoutSeconds'
  | 'maxMessageBytes'
>;

/** Whether the options ask for a fleet; throws when they do but are incomplete. */
export function fleetRequested(config: FleetConfig): boolean {
  if (!config.fleetName) return false;
  const missing = (['fleetPodName', 'fleetNamespace', 'fleetPodIp', 'fleetTokenFile'] as const).filter((k) => !config[k]);
  if (missing.length)
    throw new ConfigError(
      `--fleet-name is set, so ${missing.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} must be too (the operator sets them from the downward API and the fleet's Secret)`,
    );
  return true;
}

/** The fleet token, from a file (a mounted Secret) so it never appears in the pod spec or the process's arguments. */
async function readFleetToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--fleet-token-file ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const token = text.trim();
  if (!token) throw new ConfigError(`--fleet-token-file ${path} is empty`);
  return token;
}

export interface FleetOptions {
  config: FleetConfig;
  hub: StreamHub;
  snapshots: SnapshotService;
  bitrate: BitrateMeter;
  /** What the stream views add from HLS and the recorder. */
  sources: StreamViewSources;
  /** This pod's transcodes: renditions of a source another pod owns are waited for there. */
  transcodes: Transcodes;
  /** This pod's recordings, which the other pods list and serve through theirs. */
  recordings: RecordingStore;
  /** The port this pod's HTTP server listens on, which the other pods relay from. */
  httpPort: number;
  logger: Logger;
  /** Tests give an API of their own; by default the Kubernetes API through @kubernetes/client-node. */
  api?: LeaseApi;
}

export interface Fleet {
  /** The claim check, for the RTMP admission step (after authorization). */
  admission: AdmissionCheck;
  /** /fleet/v1, what the pods ask each other. */
  routes: Router;
  /** The stream API's fleet-wide answers. */
  streams: FleetStreams;
  /** The recordings API's fleet-wide answers. */
  recordings: FleetRecordings;
  identity: string;
  /** Lease writes and relays, for /metrics. */
  stats(): FleetCounters;
  /** Tells the fleet this pod is draining; new publishes here are refused. */
  drain(): Promise<void>;
  /** Lets go of every claim: their streams can be published on another pod at once. */
  releaseClaims(): Promise<void>;
  /** Ends relays and deletes this pod's Lease. */
  stop(): Promise<void>;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const { config, hub, logger } = o;
  const log = logger.child({ component: 'fleet' });
  const fleet = config.fleetName;
  const pod = config.fleetPodName;
  const identity = `${pod}_${randomBytes(4).toString('hex')}`;
  const token = await readFleetToken(config.fleetTokenFile);
  const httpAddress = config.fleetPodIp.includes(':') ? `[${config.fleetPodIp}]:${o.httpPort}` : `${config.fleetPodIp}:${o.httpPort}`;
  const api = o.api ?? (await kubernetesLeaseApi(config.fleetNamespace));

  const directory = new FleetDirectory({ api, fleet, log });
  const membership = new Membership({
    api,
    fleet,
    pod,
    podUid: config.fleetPodUid,
    identity,
    httpAddress,
    durationSeconds: config.fleetLeaseSeconds,
    load: () => podLoad(hub, o.sources.hls),
    log,
  });
  await membership.start();
  await directory.start();
  const relays = new Relays({ hub, directory, identity, token, log, maxTagBytes: config.maxMessageBytes });
  const claims = new StreamClaims({
    api,
    directory,
    hub,
    fleet,
    identity,
    podUid: config.fleetPodUid,
    durationSeconds: config.fleetLeaseSeconds,
    // Below the idle timeout, which would close the waiting publisher anyway.
    maxWaitMs: claimWaitSeconds(config.idleTimeoutSeconds) * 1000,
    endRelay: (id) => relays.end(id),
    answers,
    log,
  });
  let draining = false;
  const claim = drainableClaim(claims, () => draining);
  hub.remote = relays;
  o.transcodes.remote = remoteRenditions(hub, directory, identity, token);
  o.transcodes.claim = claim;
  const abandoned = new AbandonedLeases({ api, directory, identity, log });
  const failed = (what: string) => (err: unknown) => log.warn({ err: String(err) }, `fleet: ${what} failed`);
  const sweep = setInterval(() => {
    void claims
      .sweep()
      .catch(failed('claim sweep'))
      .then(() => abandoned.sweep())
      .catch(failed('sweep of abandoned leases'));
  }, membership.renewIntervalMs);
  sweep.unref();

  const admission: AdmissionCheck = (request) => (request.action === 'publish' ? claim(request) : { allow: true });
  const local = () => podStreams({ hub, bitrate: o.bitrate, sources: o.sources, pod });
  log.info({ fleet, pod, identity, namespace: config.fleetNamespace, address: httpAddress }, 'fleet: joined');

  return {
    admission,
    routes: fleetRoutes({
      hub,
      snapshots: o.snapshots,
      bitrate: o.bitrate,
      sources: o.sources,
      recordings: o.recordings,
      renditionPublished: o.transcodes.renditionPublished,
      pod,
      token,
    }),
    streams: new FleetCatalog({ directory, identity, token, local, log }),
    recordings: new FleetRecordingIndex({ directory, pod, identity, token, store: o.recordings, log }),
    identity,
    stats: () => ({
      leaseWrites: membership.writes + claims.writes + abandoned.writes,
      relays: relays.active,
      relaysStarted: relays.started,
      relayFailures: relays.failures,
      // Alive, not merely present: the gauge shows an API server that falls behind on renewals.
      pods: directory.livePods().length,
      claims: claims.heldStreams().length,
      abandonedLeasesDeleted: abandoned.deleted,
    }),
    async drain() {
      draining = true;
      await membership.drain();
    },
    releaseClaims: () => claims.releaseAll(),
    async stop() {
      clearInterval(sweep);
      hub.remote = undefined;
      o.transcodes.remote = undefined;
      o.transcodes.claim = undefined;
      relays.close();
      await claims.releaseAll();
      claims.close();
      directory.stop();
      await membership.release();
      log.info({ fleet, pod }, 'fleet: left');
    },
  };
}

/**
 * Renditions, asked for in a master.m3u8 here, of a source another pod owns:
 * waited for on that pod, where its transcode runs, then relayed here.
 */
export function remoteRenditions(hub: StreamHub, directory: FleetDirectory, identity: string, token: string): RemoteRenditions {
  return {
    async arrival(app, source, key, waitMs, signal) {
      const owner = directory.owner(streamId(app, source));
      if (!owner || owner.claim.identity === identity) return;
      const until = performance.now() + waitMs;
      const path = `${FLEET_PREFIX}/renditions/${encodeURIComponent(app)}/${encodeURIComponent(key)}?wait_ms=${Math.floor(waitMs)}`;
      const answer = await fleetGet(owner.pod.httpAddress, path, { token, timeoutMs: waitMs + 2000, signal });
      if (answer?.status === 204) await hub.arrival(app, key, until - performance.now(), signal);
    },
  };
}

/** A publish's claim, for an RTMP publish and a transcode's rendition alike; every publish is refused once the pod drains. */
function drainableClaim(claims: StreamClaims, draining: () => boolean): PublishClaim {
  return (request) => {
    if (draining())
      return {
        allow: false,
        code: 'NetStream.Publish.Failed',
        description: 'this pod is shutting down; publish again to be served by another',
        close: true,
      };
    return claims.claim(request);
  };
}
