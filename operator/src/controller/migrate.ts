// From operator 0.1.0's layout to the StatefulSet, without losing recordings.
// 0.1.0 ran a Deployment with one claim per volume (<name>-recordings,
// <name>-keyframes). Before the first StatefulSet is applied: the Deployment
// goes, its pods are awaited, and for every volume that is now per pod, a Job
// copies the old claim's files into the claim the StatefulSet's first pod
// will use (<volume>-<name>-0). The old claim is then marked with where its
// files went and left alone: kept with reclaimPolicy Retain, garbage-collected
// with the RtmpServer with Delete, never deleted by the operator. A shared
// (ReadWriteMany) volume keeps its claim, which has the same name as before.
// Each step is level-triggered: the reconcile calls migrate() until it is done.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { RtmpServer } from '../api/rtmpserver.ts';
import type { Cause } from './causes.ts';
import type { Manifest } from './manifest.ts';
import { childNames } from './names.ts';
import { migratedToAnnotation, migrationJob, perPodClaim, perPodVolumes, type VolumeName } from './storage.ts';

type Cached = KubernetesObject & {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
};

export interface MigrationContext {
  server: RtmpServer;
  /** Cached objects of this RtmpServer. */
  deployment?: Cached;
  statefulSet?: Cached;
  job?: Cached;
  pods: readonly Cached[];
  claims: readonly Cached[];
  /** The image and security contexts of the rtmpd pod, which the copy Job runs with. */
  pod: { image: string; securityContext: object; containerSecurityContext: object };
  apply: (manifest: Manifest) => Promise<unknown>;
  remove: (object: KubernetesObject) => Promise<void>;
  annotate: (object: KubernetesObject, annotations: Record<string, string>) => Promise<void>;
}

export type MigrationState =
  { kind: 'done'; migrated?: VolumeName[] } | { kind: 'waiting'; message: string } | { kind: 'failed'; cause: Cause };

const ownedBy = (o: KubernetesObject | undefined, server: RtmpServer) =>
  o?.metadata?.ownerReferences?.some((r) => r.controller && r.uid === server.metadata.uid) ?? false;
const condition = (o: Cached | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type && c.status === 'True');

export async function migrate(ctx: MigrationContext): Promise<MigrationState> {
  const { server } = ctx;
  const names = childNames(server);
  if (ctx.deployment && ownedBy(ctx.deployment, server)) {
    await ctx.remove(ctx.deployment);
    return { kind: 'waiting', message: `removing the Deployment ${names.workload} of operator 0.1.0; a StatefulSet replaces it` };
  }
  if (ctx.statefulSet) return { kind: 'done' };
  const previousPods = ctx.pods.filter((p) => p.metadata?.ownerReferences?.some((r) => r.kind === 'ReplicaSet'));
  if (previousPods.length)
    return { kind: 'waiting', message: `waiting for ${previousPods.length} pod(s) of the previous Deployment to stop` };

  const pending = perPodVolumes(server).filter((v) => {
    const old = ctx.claims.find((c) => c.metadata?.name === names[v]);
    return old && !old.metadata?.annotations?.[migratedToAnnotation];
  });
  if (!pending.length) return { kind: 'done' };

  const copied = pending.map((v) => `${names[v]} → ${names.perPodClaim(v, 0)}`).join(', ');
  if (condition(ctx.job, 'Complete')) {
    for (const v of pending) {
      const old = ctx.claims.find((c) => c.metadata?.name === names[v]) as KubernetesObject;
      await ctx.annotate(old, { [migratedToAnnotation]: names.perPodClaim(v, 0) });
    }
    return { kind: 'done', migrated: pending };
  }
  const failed = condition(ctx.job, 'Failed');
  if (failed) {
    return {
      kind: 'failed',
      cause: {
        reason: 'MigrationFailed',
        message: `copying ${copied} failed: ${failed.message ?? failed.reason ?? ''} (kubectl logs job/${names.migrationJob}); delete the Job to try again`,
      },
    };
  }
  for (const v of pending) await ctx.apply(perPodClaim(server, v, 0));
  if (!ctx.job) await ctx.apply(migrationJob(server, pending, ctx.pod));
  return { kind: 'waiting', message: `copying the claims of operator 0.1.0 to the first pod's: ${copied}` };
}
