import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { apiVersion, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import type { Manifest } from './manifest.ts';
import { migrate, type MigrationContext } from './migrate.ts';

const server = (spec: RtmpServerSpecInput = {}): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name: 'edge', namespace: 'media', uid: 'uid-1', generation: 1 },
  spec: parseSpec(spec),
});
const claim = (name: string, annotations?: Record<string, string>): KubernetesObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'media', ...(annotations ? { annotations } : {}) },
});

function context(over: Partial<MigrationContext> = {}) {
  const applied: Manifest[] = [];
  const removed: KubernetesObject[] = [];
  const annotated: [string | undefined, Record<string, string>][] = [];
  const ctx: MigrationContext = {
    server: server(),
    pods: [],
    claims: [claim('edge-recordings'), claim('edge-keyframes')],
    pod: { image: 'rtmpd:1', securityContext: { runAsUser: 1000 }, containerSecurityContext: { readOnlyRootFilesystem: true } },
    apply: async (m) => void applied.push(m),
    remove: async (o) => void removed.push(o),
    annotate: async (o, a) => void annotated.push([o.metadata?.name, a]),
    ...over,
  };
  return { ctx, applied, removed, annotated };
}

describe('migration from operator 0.1.0', () => {
  it('removes the old Deployment first, then waits for its pods', async () => {
    const deployment = {
      kind: 'Deployment',
      metadata: { name: 'edge', ownerReferences: [{ apiVersion, kind, name: 'edge', uid: 'uid-1', controller: true }] },
    };
    const a = context({ deployment });
    expect(await migrate(a.ctx)).toMatchObject({ kind: 'waiting', message: expect.stringContaining('removing the Deployment edge') });
    expect(a.removed).toEqual([deployment]);
    const pod = {
      metadata: { name: 'edge-abc', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'edge-5d', uid: 'x' }] },
    };
    expect(await migrate(context({ pods: [pod] }).ctx)).toEqual({
      kind: 'waiting',
      message: 'waiting for 1 pod(s) of the previous Deployment to stop',
    });
  });

  it("makes the first pod's claims and a Job that copies the old claims into them", async () => {
    const { ctx, applied } = context();
    expect(await migrate(ctx)).toEqual({
      kind: 'waiting',
      message:
        "copying the claims of operator 0.1.0 to the first pod's: edge-recordings → recordings-edge-0, edge-keyframes → keyframes-edge-0",
    });
    expect(applied.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual([
      'PersistentVolumeClaim/recordings-edge-0',
      'PersistentVolumeClaim/keyframes-edge-0',
      'Job/edge-migrate',
    ]);
    const job = applied[2] as Manifest & { spec: { template: { metadata: object; spec: Record<string, any> } } }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const pod = job.spec.template.spec;
    expect(pod.securityContext).toEqual({ runAsUser: 1000 });
    expect(pod.containers[0].image).toBe('rtmpd:1');
    // the image has no shell: its node copies, each source directory into its target
    expect(pod.containers[0].command.slice(0, 2)).toEqual(['node', '-e']);
    expect(pod.containers[0].command.slice(3)).toEqual(['/from/recordings', '/to/recordings', '/from/keyframes', '/to/keyframes']);
    expect(pod.volumes).toContainEqual({
      name: 'from-recordings',
      persistentVolumeClaim: { claimName: 'edge-recordings', readOnly: true },
    });
    expect(pod.volumes).toContainEqual({ name: 'to-recordings', persistentVolumeClaim: { claimName: 'recordings-edge-0' } });
    // the Job's pod is not one of the rtmpd pods the Service and PodDisruptionBudget select
    expect(job.spec.template.metadata).toMatchObject({ labels: { 'app.kubernetes.io/name': 'rtmpd-migration' } });
  });

  it('marks the old claims once the Job completed, and reports a failed Job with its message', async () => {
    const done = { metadata: { name: 'edge-migrate' }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    const a = context({ job: done });
    expect(await migrate(a.ctx)).toEqual({ kind: 'done', migrated: ['recordings', 'keyframes'] });
    expect(a.annotated).toEqual([
      ['edge-recordings', { 'media.fluxiot.io/migrated-to': 'recordings-edge-0' }],
      ['edge-keyframes', { 'media.fluxiot.io/migrated-to': 'keyframes-edge-0' }],
    ]);
    const failed = {
      metadata: { name: 'edge-migrate' },
      status: {
        conditions: [
          { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
        ],
      },
    };
    expect(await migrate(context({ job: failed }).ctx)).toMatchObject({
      kind: 'failed',
      cause: {
        reason: 'MigrationFailed',
        message: expect.stringContaining('Job has reached the specified backoff limit (kubectl logs job/edge-migrate)'),
      },
    });
  });

  it('has nothing to do for a new server, one already migrated, or shared volumes', async () => {
    expect(await migrate(context({ claims: [] }).ctx)).toEqual({ kind: 'done' });
    const migrated = [claim('edge-recordings', { 'media.fluxiot.io/migrated-to': 'recordings-edge-0' })];
    expect(await migrate(context({ claims: migrated }).ctx)).toEqual({ kind: 'done' });
    const rwx = { recordings: { accessModes: ['ReadWriteMany' as const] }, keyframes: { accessModes: ['ReadWriteMany' as const] } };
    expect(await migrate(context({ server: server({ storage: rwx }) }).ctx)).toEqual({ kind: 'done' });
    expect(await migrate(context({ statefulSet: { metadata: { name: 'edge' } } }).ctx)).toEqual({ kind: 'done' });
  });
});
