// What the fleet keeps in Leases, and how it reads them back. Two kinds, both
// labelled with the fleet's name so one watch sees a whole RtmpServer:
// - a pod Lease per rtmpd process, renewed while it lives; it carries the
//   pod's address and load (what the others relay from and what the
//   operator reports in status);
// - a stream claim per live stream, created when a publish is admitted and
//   deleted when it ends; it is valid while its holder's pod Lease is.
// Both name their holder's Pod as owner when it knows its UID, so the garbage
// collector deletes them with the Pod, also after a kill that left no time to;
// without one, the other pods delete them once abandoned (abandoned.ts).
import { createHash } from 'node:crypto';
import { PUBLISH_PROTOCOLS, type PublishProtocol } from '../hub/subscriber.ts';
import type { Lease } from './lease-api.ts';

/** On every Lease of a fleet: the fleet's (the RtmpServer's) name. */
export const fleetLabel = 'media.fluxiot.io/fleet';
const LABEL_KIND = 'media.fluxiot.io/lease';
const ANNOTATION = {
  pod: 'media.fluxiot.io/pod',
  address: 'media.fluxiot.io/http-address',
  publishers: 'media.fluxiot.io/publishers',
  players: 'media.fluxiot.io/players',
  draining: 'media.fluxiot.io/draining',
  stream: 'media.fluxiot.io/stream',
  protocol: 'media.fluxiot.io/protocol',
} as const;

/** `media.fluxiot.io/fleet=<name>`: every Lease of one fleet. */
export const fleetSelector = (fleet: string): string => `${fleetLabel}=${fleet}`;

/** The pod Lease's name; pod names are unique in a namespace. */
export const podLeaseName = (pod: string): string => `rtmpd-pod.${pod}`;

/**
 * The claim's name. Stream keys may hold upper case and `_`, which object
 * names may not, so the name is a hash of the stream id; the id itself is an
 * annotation and is checked, so a hash collision refuses instead of sharing.
 */
export const claimName = (fleet: string, streamId: string): string =>
  `rtmpd-stream.${fleet}.${createHash('sha256').update(streamId).digest('hex').slice(0, 24)}`;

/**
 * A process's identity: the pod name and an id drawn at start. A pod that
 * restarts under the same name (a StatefulSet's) is a new holder, so the
 * claims of the process that died are known stale at once.
 */
export const podOf = (identity: string): string => identity.slice(0, identity.lastIndexOf('_'));

export interface PodRecord {
  /** The Lease's name and version. */
  lease: string;
  resourceVersion: string;
  pod: string;
  identity: string;
  /** `host:port` of the pod's HTTP server. */
  httpAddress: string;
  publishers: number;
  players: number;
  draining: boolean;
  durationMs: number;
  /** RFC 3339, as written by the holder (its clock). */
  renewTime: string;
  /** It names a Pod as owner: the garbage collector deletes it with the Pod, no rtmpd need to. */
  ownedByPod: boolean;
}

export interface ClaimRecord {
  lease: string;
  resourceVersion: string;
  /** `rtmp/<app>/<key>`. */
  streamId: string;
  identity: string;
  acquireTime: string;
  /** How its publisher came in (an RTMP listener, or a transcode), what the catalog shows when the owner does not answer. */
  protocol: PublishProtocol;
  /** It names a Pod as owner: the garbage collector deletes it with the Pod, no rtmpd need to. */
  ownedByPod: boolean;
}

/**
 * A claim's protocol. Claims written before it was recorded have none, and
 * a rolling upgrade meets both: those read as `rtmp`, what was shown for
 * every claim before (so a value a later version adds does too).
 */
const protocolOf = (v: string | undefined): PublishProtocol => PUBLISH_PROTOCOLS.find((p) => p === v) ?? 'rtmp';

const ownedByPod = (lease: Lease): boolean => lease.metadata.ownerReferences?.some((o) => o.kind === 'Pod') ?? false;

const count = (v: string | undefined): number => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : 0;
};

export function podRecord(lease: Lease): PodRecord | undefined {
  if (lease.metadata.labels?.[LABEL_KIND] !== 'pod') return undefined;
  const a = lease.metadata.annotations ?? {};
  const identity = lease.spec.holderIdentity ?? '';
  return {
    lease: lease.metadata.name,
    resourceVersion: lease.metadata.resourceVersion ?? '',
    pod: a[ANNOTATION.pod] ?? podOf(identity),
    identity,
    httpAddress: a[ANNOTATION.address] ?? '',
    publishers: count(a[ANNOTATION.publishers]),
    players: count(a[ANNOTATION.players]),
    draining: a[ANNOTATION.draining] === 'true',
    durationMs: (lease.spec.leaseDurationSeconds ?? 0) * 1000,
    renewTime: lease.spec.renewTime ?? '',
    ownedByPod: ownedByPod(lease),
  };
}

export function claimRecord(lease: Lease): ClaimRecord | undefined {
  if (lease.metadata.labels?.[LABEL_KIND] !== 'stream') return undefined;
  const streamId = lease.metadata.annotations?.[ANNOTATION.stream];
  if (!streamId) return undefined;
  return {
    lease: lease.metadata.name,
    resourceVersion: lease.metadata.resourceVersion ?? '',
    streamId,
    identity: lease.spec.holderIdentity ?? '',
    acquireTime: lease.spec.acquireTime ?? '',
    protocol: protocolOf(lease.metadata.annotations?.[ANNOTATION.protocol]),
    ownedByPod: ownedByPod(lease),
  };
}

export interface PodLeaseFields {
  fleet: string;
  pod: string;
  /** The Pod's UID: the Lease is the Pod's, so the garbage collector deletes it with the Pod. Unset: no owner (not run by the operator). */
  podUid?: string | undefined;
  identity: string;
  httpAddress: string;
  durationSeconds: number;
  publishers: number;
  players: number;
  draining: boolean;
  now: string;
  /** When this identity first took the Lease. */
  acquireTime: string;
}

/** The Pod as the Lease's owner; without its UID (not run by the operator), no owner. */
const ownedBy = (pod: string, podUid: string | undefined) =>
  podUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod, uid: podUid }] } : {};

export const podLease = (f: PodLeaseFields, resourceVersion?: string): Lease => ({
  metadata: {
    name: podLeaseName(f.pod),
    ...(resourceVersion ? { resourceVersion } : {}),
    labels: { [fleetLabel]: f.fleet, [LABEL_KIND]: 'pod' },
    annotations: {
      [ANNOTATION.pod]: f.pod,
      [ANNOTATION.address]: f.httpAddress,
      [ANNOTATION.publishers]: String(f.publishers),
      [ANNOTATION.players]: String(f.players),
      ...(f.draining ? { [ANNOTATION.draining]: 'true' } : {}),
    },
    ...ownedBy(f.pod, f.podUid),
  },
  spec: { holderIdentity: f.identity, leaseDurationSeconds: f.durationSeconds, acquireTime: f.acquireTime, renewTime: f.now },
});

export const claimLease = (
  o: {
    fleet: string;
    streamId: string;
    protocol: PublishProtocol;
    identity: string;
    podUid?: string | undefined;
    durationSeconds: number;
    now: string;
  },
  resourceVersion?: string,
): Lease => ({
  metadata: {
    name: claimName(o.fleet, o.streamId),
    ...(resourceVersion ? { resourceVersion } : {}),
    labels: { [fleetLabel]: o.fleet, [LABEL_KIND]: 'stream' },
    annotations: { [ANNOTATION.stream]: o.streamId, [ANNOTATION.pod]: podOf(o.identity), [ANNOTATION.protocol]: o.protocol },
    // A take-over replaces the owner too: the claim goes with its new holder's Pod.
    ...ownedBy(podOf(o.identity), o.podUid),
  },
  // Never renewed: the claim lives as long as its holder's pod Lease does.
  spec: { holderIdentity: o.identity, leaseDurationSeconds: o.durationSeconds, acquireTime: o.now, renewTime: o.now },
});
