// Where the pods keep recordings and keyframes. A volume is either shared by
// every pod (an existingClaim, or a ReadWriteMany claim the operator makes)
// or per pod: a StatefulSet volumeClaimTemplate, so each replica gets a claim
// of its own and any number of replicas works on ReadWriteOnce storage.
import type { RtmpServer, RtmpServerSpec } from '../api/rtmpserver.ts';
import { labels, meta, volumeLabel, type Manifest } from './manifest.ts';
import { childNames } from './names.ts';
import { mountPaths } from './rtmpd-config.ts';

export const volumeNames = ['recordings', 'keyframes'] as const;
export type VolumeName = (typeof volumeNames)[number];
type VolumeSpec = RtmpServerSpec['storage'][VolumeName];

/** On a claim made by operator 0.1.0 (one claim per RtmpServer): the per-pod claim its files were copied to. */
export const migratedToAnnotation = 'media.fluxiot.io/migrated-to';

const isShared = (volume: VolumeSpec): boolean => volume.existingClaim !== undefined || volume.accessModes.includes('ReadWriteMany');

/** Volumes each pod gets a claim of its own for. */
export const perPodVolumes = (server: RtmpServer): VolumeName[] => volumeNames.filter((v) => !isShared(server.spec.storage[v]));

const claimSpec = (volume: VolumeSpec, size: string) => ({
  accessModes: volume.accessModes,
  resources: { requests: { storage: size } },
  ...(volume.storageClassName !== undefined ? { storageClassName: volume.storageClassName } : {}),
  volumeMode: 'Filesystem',
});

const claimLabels = (server: RtmpServer, volume: VolumeName) => ({ ...labels(server), [volumeLabel]: volume });

/** The shared ReadWriteMany claims the operator makes (an existingClaim is the user's). */
export function sharedClaims(server: RtmpServer): Manifest[] {
  const { storage } = server.spec;
  return volumeNames
    .filter((v) => isShared(storage[v]) && !storage[v].existingClaim)
    .map((v) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      // Delete: owned, so garbage collection removes the claim with the RtmpServer.
      // Retain: not owned, so it outlives the RtmpServer (no finalizer needed).
      metadata: { ...meta(server, childNames(server)[v], storage.reclaimPolicy === 'Delete'), labels: claimLabels(server, v) },
      spec: claimSpec(storage[v], storage[v].size),
    }));
}

/**
 * The StatefulSet's volumeClaimTemplates. A StatefulSet cannot change them
 * once created, so `sizes` carries those of the existing StatefulSet; a new
 * size reaches the claims through expandedClaims().
 */
export function claimTemplates(server: RtmpServer, sizes: Partial<Record<VolumeName, string>>): object[] {
  return perPodVolumes(server).map((v) => ({
    metadata: { name: v, labels: claimLabels(server, v) },
    spec: claimSpec(server.spec.storage[v], sizes[v] ?? server.spec.storage[v].size),
  }));
}

/** A pod's claim of a per-pod volume, by the name the StatefulSet gives it. */
export function perPodClaim(server: RtmpServer, volume: VolumeName, ordinal: number): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { ...meta(server, childNames(server).perPodClaim(volume, ordinal), false), labels: claimLabels(server, volume) },
    spec: claimSpec(server.spec.storage[volume], server.spec.storage[volume].size),
  };
}

/** The new size for each existing per-pod claim that asks for another (applied as a patch of that one field). */
export function expandedClaims(server: RtmpServer, claims: { name: string; volume: VolumeName; size: string | undefined }[]): Manifest[] {
  return claims
    .filter((c) => perPodVolumes(server).includes(c.volume) && c.size !== server.spec.storage[c.volume].size)
    .map((c) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: c.name, namespace: server.metadata.namespace, labels: claimLabels(server, c.volume) },
      spec: { resources: { requests: { storage: server.spec.storage[c.volume].size } } },
    }));
}

/** The pod's volumes and mounts for recordings and keyframes: shared claims as volumes, per-pod ones from the templates. */
export function storageVolumes(server: RtmpServer): { volumes: object[]; mounts: object[] } {
  const names = childNames(server);
  return {
    volumes: volumeNames
      .filter((v) => isShared(server.spec.storage[v]))
      .map((v) => ({ name: v, persistentVolumeClaim: { claimName: names[v] } })),
    mounts: volumeNames.map((v) => ({ name: v, mountPath: mountPaths[v] })),
  };
}

// Copies each argument pair's directory tree (source, then target) without
// overwriting what the target holds, keeping modification times.
const copyScript = [
  "const { cpSync } = require('node:fs');",
  'for (let i = 1; i < process.argv.length; i += 2) {',
  '  cpSync(process.argv[i], process.argv[i + 1], { recursive: true, force: false, preserveTimestamps: true });',
  '  console.log(`copied ${process.argv[i]} to ${process.argv[i + 1]}`);',
  '}',
].join('\n');

/**
 * A Job that copies the files of the single claim operator 0.1.0 made for a
 * volume into the claim of the StatefulSet's first pod, before that pod runs.
 * It runs the rtmpd image's node (the image has no shell) with the pod's
 * security context.
 */
export function migrationJob(
  server: RtmpServer,
  volumes: VolumeName[],
  pod: { image: string; securityContext: object; containerSecurityContext: object },
): Manifest {
  const names = childNames(server);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(server, names.migrationJob),
    spec: {
      backoffLimit: 3,
      // Kept a day for its logs, then removed by the TTL controller.
      ttlSecondsAfterFinished: 86_400,
      template: {
        // Not the rtmpd pods' name label: the Service, the PodDisruptionBudget and the StatefulSet must not count it.
        metadata: { labels: { ...labels(server), 'app.kubernetes.io/name': 'rtmpd-migration' } },
        spec: {
          restartPolicy: 'OnFailure',
          // It copies files and never talks to the API server.
          automountServiceAccountToken: false,
          securityContext: pod.securityContext,
          containers: [
            {
              name: 'copy',
              image: pod.image,
              command: ['node', '-e', copyScript, ...volumes.flatMap((v) => [`/from/${v}`, `/to/${v}`])],
              securityContext: pod.containerSecurityContext,
              resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: volumes.flatMap((v) => [
                { name: `from-${v}`, mountPath: `/from/${v}`, readOnly: true },
                { name: `to-${v}`, mountPath: `/to/${v}` },
              ]),
            },
          ],
          volumes: volumes.flatMap((v) => [
            { name: `from-${v}`, persistentVolumeClaim: { claimName: names[v], readOnly: true } },
            { name: `to-${v}`, persistentVolumeClaim: { claimName: names.perPodClaim(v, 0) } },
          ]),
        },
      },
    },
  };
}
