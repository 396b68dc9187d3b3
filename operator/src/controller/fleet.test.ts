import { claimLease, podLease } from '@flux-rtmpd/rtmpd/fleet-records';
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { apiVersion, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import { rtmpdPodRules } from '../rbac.ts';
import { desiredState } from './desired.ts';
import { fleetTokenSecret, newFleetToken } from './fleet.ts';
import { countsChanged, fleetCounts } from './fleet-status.ts';
import { restrictedPodSecurityContext, restrictedSecurityContext } from './pod.ts';
import { mountPaths } from './rtmpd-config.ts';
import { migrationJob } from './storage.ts';

const server = (spec: RtmpServerSpecInput = {}): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name: 'edge', namespace: 'media', uid: 'uid-1', generation: 1 },
  spec: parseSpec(spec),
});
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const desired = (spec: RtmpServerSpecInput = {}) =>
  desiredState(server(spec), { image: 'rtmpd:test', transcodeImage: 'rtmpd:test-transcode' });
const podSpec = (spec: RtmpServerSpecInput = {}): Obj => (desired(spec).statefulSet as Obj).spec.template.spec;

describe('the fleet the operator wires into its pods', () => {
  it('gives the pods a ServiceAccount bound to a Role with exactly rtmpdPodRules, all owned by the RtmpServer', () => {
    const [sa, role, binding] = desired().podAccess as Obj[];
    expect(sa).toMatchObject({ kind: 'ServiceAccount', metadata: { name: 'edge-rtmpd', namespace: 'media' } });
    // No token for whatever else might run under the account: the rtmpd pod asks for its own.
    expect(sa!.automountServiceAccountToken).toBe(false);
    expect(role).toMatchObject({ kind: 'Role', metadata: { name: 'edge-rtmpd' }, rules: rtmpdPodRules });
    expect(binding).toMatchObject({
      kind: 'RoleBinding',
      metadata: { name: 'edge-rtmpd' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'edge-rtmpd' },
      subjects: [{ kind: 'ServiceAccount', name: 'edge-rtmpd', namespace: 'media' }],
    });
    for (const o of [sa, role, binding])
      expect(o!.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: 'uid-1', controller: true })]);
  });

  it('runs the pod under that account with its token, the fleet options and the downward API, and keeps the restricted Pod Security settings', () => {
    const pod = podSpec();
    expect(pod.serviceAccountName).toBe('edge-rtmpd');
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.securityContext).toEqual(restrictedPodSecurityContext);
    const c = pod.containers[0];
    expect(c.securityContext).toEqual(restrictedSecurityContext);
    expect(c.args).toEqual(
      expect.arrayContaining(['--fleet-name=edge', `--fleet-token-file=${mountPaths.secrets}/edge-fleet-token/token`]),
    );
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]));
    expect(env).toMatchObject({
      RTMPD_FLEET_POD_NAME: 'metadata.name',
      RTMPD_FLEET_POD_UID: 'metadata.uid',
      RTMPD_FLEET_NAMESPACE: 'metadata.namespace',
      RTMPD_FLEET_POD_IP: 'status.podIP',
    });
    // the token is mounted from its Secret, read-only, never a value in the spec
    const volume = (pod.volumes as Obj[]).find((v) => v.secret?.secretName === 'edge-fleet-token');
    expect(volume).toBeDefined();
    expect(c.volumeMounts).toContainEqual({ name: volume!.name, mountPath: `${mountPaths.secrets}/edge-fleet-token`, readOnly: true });
    expect(JSON.stringify(desired().statefulSet)).not.toMatch(/stringData|secretKeyRef/);
  });

  it('is a fleet with one replica too, so scaling never rolls the pods', () => {
    expect(podSpec({ replicas: 1 })).toEqual(podSpec({ replicas: 5 }));
  });

  it('gives the migration Job no ServiceAccount token: it copies files and never calls the API', () => {
    const job = migrationJob(server(), ['recordings'], { image: 'rtmpd:test', securityContext: {}, containerSecurityContext: {} }) as Obj;
    expect(job.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('makes a fleet token Secret from a fresh random token, owned by the RtmpServer', () => {
    const a = newFleetToken();
    const b = newFleetToken();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const secret = fleetTokenSecret(server(), a) as Obj;
    expect(secret).toMatchObject({ kind: 'Secret', type: 'Opaque', metadata: { name: 'edge-fleet-token' }, stringData: { token: a } });
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: 'uid-1' })]);
  });
});

const now = '2026-11-28T12:00:00.000000Z';
const pod = (name: string, identity: string, publishers: number, players: number, draining = false): KubernetesObject =>
  podLease({
    fleet: 'edge',
    pod: name,
    identity,
    httpAddress: '10.0.0.1:8082',
    durationSeconds: 10,
    publishers,
    players,
    draining,
    now,
    acquireTime: now,
  });
const claim = (streamId: string, identity: string): KubernetesObject =>
  claimLease({ fleet: 'edge', streamId, protocol: 'rtmp', identity, durationSeconds: 10, now });

describe('the fleet counts in the status', () => {
  it('adds up what each running pod reports, and counts the streams claimed by live processes', () => {
    const leases = [
      pod('edge-1', 'edge-1_b', 0, 4, true),
      pod('edge-0', 'edge-0_a', 2, 3),
      pod('edge-2', 'edge-2_gone', 5, 5), // its pod was deleted: a killed process's Lease
      claim('rtmp/live/a', 'edge-0_a'),
      claim('rtmp/live/b', 'edge-0_a'),
      claim('rtmp/live/c', 'edge-1_dead'), // left by a previous process of edge-1
      claim('rtmp/live/d', 'edge-2_gone'),
    ];
    expect(fleetCounts(leases, new Set(['edge-0', 'edge-1']))).toEqual({
      streams: 2,
      publishers: 2,
      players: 7,
      pods: [
        { name: 'edge-0', publishers: 2, players: 3 },
        { name: 'edge-1', publishers: 0, players: 4, draining: true },
      ],
    });
    expect(fleetCounts([], new Set(['edge-0']))).toEqual({ streams: 0, publishers: 0, players: 0, pods: [] });
  });

  it('reconciles for a Lease only when what it reports changed, not for every renewal', () => {
    const before = pod('edge-0', 'edge-0_a', 2, 3) as Obj;
    const renewed = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: '2' },
      spec: { ...before.spec, renewTime: '2026-11-28T12:00:03.000000Z' },
    };
    expect(countsChanged(before, renewed)).toBe(false);
    expect(countsChanged(pod('edge-0', 'edge-0_a', 2, 3), pod('edge-0', 'edge-0_a', 2, 4))).toBe(true);
    expect(countsChanged(pod('edge-0', 'edge-0_a', 2, 3), pod('edge-0', 'edge-0_a', 2, 3, true))).toBe(true);
    expect(countsChanged(pod('edge-0', 'edge-0_a', 2, 3), pod('edge-0', 'edge-0_b', 2, 3))).toBe(true);
    expect(countsChanged(undefined, claim('rtmp/live/a', 'edge-0_a'))).toBe(true);
    expect(countsChanged(claim('rtmp/live/a', 'edge-0_a'), claim('rtmp/live/a', 'edge-1_b'))).toBe(true);
    expect(countsChanged(claim('rtmp/live/a', 'edge-0_a'), undefined)).toBe(true);
  });
});
