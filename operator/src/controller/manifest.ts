// What every object the operator owns carries: the shape server-side apply
// sends, the labels that select and group them, and the owner reference.
import { apiVersion, kind, type RtmpServer } from '../api/rtmpserver.ts';

export const fieldManager = 'rtmpd-operator';
export const managedBy = { 'app.kubernetes.io/managed-by': 'rtmpd-operator' } as const;
export const instanceLabel = 'app.kubernetes.io/instance';
/** On claims: which volume (recordings or keyframes) a claim holds. */
export const volumeLabel = 'media.fluxiot.io/volume';

interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

/** Minimal object shape the builders return (what server-side apply sends). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  [field: string]: unknown;
}

/** The labels that select an RtmpServer's pods. */
export const selectorLabels = (server: RtmpServer): Record<string, string> => ({
  'app.kubernetes.io/name': 'rtmpd',
  [instanceLabel]: server.metadata.name,
});

export const labels = (server: RtmpServer): Record<string, string> => ({
  ...selectorLabels(server),
  'app.kubernetes.io/component': 'media-server',
  'app.kubernetes.io/part-of': 'flux-rtmpd',
  ...managedBy,
});

const ownerReference = (server: RtmpServer): OwnerReference => ({
  apiVersion,
  kind,
  name: server.metadata.name,
  uid: server.metadata.uid,
  controller: true,
  blockOwnerDeletion: true,
});

/** Name, namespace and labels; `owned` objects are garbage-collected with the RtmpServer. */
export const meta = (server: RtmpServer, name: string, owned = true): Manifest['metadata'] => ({
  name,
  namespace: server.metadata.namespace,
  labels: labels(server),
  ...(owned ? { ownerReferences: [ownerReference(server)] } : {}),
});

/** The label selector of the pods, as the scale subresource reports it. */
export const selectorString = (server: RtmpServer): string =>
  Object.entries(selectorLabels(server))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
