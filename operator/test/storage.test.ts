// Per-pod storage on the real API server: any number of replicas on
// ReadWriteOnce storage (a StatefulSet whose pods have claims of their own),
// claims expanded in place, a refused shrink reported without holding back the
// rest of the change, and an RtmpServer made by operator 0.1.0 (a Deployment
// with one claim per volume) moved to the StatefulSet with its recordings.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import {
  apply,
  boundVolume,
  condition,
  eventsOf,
  get,
  installCrd,
  list,
  restrictedNamespace,
  rtmpServer,
  startOperators,
  storageClass,
  suffix,
  volumeDir,
  waitCondition,
  waitReady,
  type Kube,
  type OperatorFixture,
} from './harness.ts';

const id = suffix();
const ns = `rtmp-st-${id}`;
const expandable = `e2e-expandable-${id}`;
const fixtures: OperatorFixture[] = [];

beforeAll(async () => {
  await installCrd();
  await restrictedNamespace(ns);
  // Claims can grow only where their StorageClass allows it.
  await apply({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: expandable },
    provisioner: 'example.com/none',
    allowVolumeExpansion: true,
  });
  fixtures.push(await startOperators({ id, watched: [ns] }));
}, 120_000);

afterAll(async () => {
  for (const f of fixtures) await f.teardown();
  await kubectl(['delete', 'storageclass', expandable, '--ignore-not-found', '--wait=false'], { allowFailure: true });
}, 60_000);

const claimsOf = async (namespace: string, name: string) =>
  (await list('pvc', namespace, `app.kubernetes.io/instance=${name}`)).filter((p) => !p.metadata.deletionTimestamp);

describe('pods with their own storage', () => {
  const volumes = { recordings: { storageClassName: expandable }, keyframes: { storageClassName: expandable } };

  it('runs three replicas on ReadWriteOnce storage, each pod with claims of its own', async () => {
    await apply(
      [0, 1, 2].flatMap((i) => ['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-multi-${i}`, ['ReadWriteOnce'], expandable))),
    );
    await apply(rtmpServer(ns, 'multi', { replicas: 3, storage: volumes }));
    const o = await eventually('3 pods ready', async () => {
      const s = await waitReady(ns, 'multi');
      return s.status.readyReplicas === 3 ? s : undefined;
    });
    expect(o.status.replicas).toBe(3);
    const claims = await claimsOf(ns, 'multi');
    expect(claims.map((c) => c.metadata.name).sort()).toEqual([
      'keyframes-multi-0',
      'keyframes-multi-1',
      'keyframes-multi-2',
      'recordings-multi-0',
      'recordings-multi-1',
      'recordings-multi-2',
    ]);
    for (const c of claims) {
      expect(c.spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(c.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'rtmpd-operator',
        'media.fluxiot.io/volume': expect.any(String),
      });
    }
    // stable pod names; each pod mounts the claims that carry its ordinal
    const pods = await list('pods', ns, 'app.kubernetes.io/instance=multi');
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(['multi-0', 'multi-1', 'multi-2']);
    for (const p of pods) {
      const claimsOfPod = (p.spec.volumes as { persistentVolumeClaim?: { claimName: string } }[]).flatMap((v) =>
        v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [],
      );
      expect(claimsOfPod.sort()).toEqual([`keyframes-${p.metadata.name}`, `recordings-${p.metadata.name}`]);
    }
    // each pod has a DNS name through the headless Service
    expect((await get('service', ns, 'multi-pods'))?.spec.clusterIP).toBe('None');
    expect((await get('statefulset', ns, 'multi'))?.spec.serviceName).toBe('multi-pods');
  });

  it('expands every pod’s claims when the size grows', async () => {
    await kubectl(['patch', 'rtmpserver', 'multi', '-n', ns, '--type=merge', '-p', '{"spec":{"storage":{"recordings":{"size":"15Gi"}}}}']);
    await eventually('the recordings claims at 15Gi', async () => {
      const sizes = (await claimsOf(ns, 'multi'))
        .filter((c) => c.metadata.name.startsWith('recordings-'))
        .map((c) => c.spec.resources.requests.storage as string);
      return sizes.length === 3 && sizes.every((s) => s === '15Gi') ? sizes : undefined;
    });
    // the StatefulSet's templates cannot change: they keep the size the claims were made with
    const sts = (await get('statefulset', ns, 'multi'))!;
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('10Gi');
    await waitReady(ns, 'multi');
  });

  it('reports a refused shrink as Stalled with the claim’s error, still applying the rest of the change, and never Ready', async () => {
    await kubectl([
      'patch',
      'rtmpserver',
      'multi',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"spec":{"storage":{"recordings":{"size":"5Gi"}},"podAnnotations":{"example.com/change":"applied"}}}',
    ]);
    const o = await waitCondition(ns, 'multi', 'Stalled', 'True', 'ApplyFailed');
    // the API server's words: a claim may not shrink below what it holds
    expect(condition(o, 'Stalled')?.message).toMatch(
      /^PersistentVolumeClaim recordings-multi-\d: 422: .*spec\.resources\.requests\.storage: Forbidden: field can not be less than/,
    );
    expect(condition(o, 'Ready')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(condition(o, 'Reconciling')?.status).toBe('False');
    // the other children still got the change
    await eventually('the pod annotation applied', async () =>
      (await get('statefulset', ns, 'multi'))?.spec.template.metadata.annotations['example.com/change'] === 'applied' ? true : undefined,
    );
    // what GitOps tools and scripts wait on does not report success
    const wait = await kubectl(['wait', '--for=condition=Ready', 'rtmpserver/multi', '-n', ns, '--timeout=5s'], { allowFailure: true });
    expect(wait.code).not.toBe(0);
    expect(wait.stderr).toContain('timed out waiting for the condition');
    // undone, it recovers
    await kubectl(['patch', 'rtmpserver', 'multi', '-n', ns, '--type=merge', '-p', '{"spec":{"storage":{"recordings":{"size":"15Gi"}}}}']);
    await waitReady(ns, 'multi');
  });

  it('keeps the claims of pods removed by a scale-down, for when they come back', async () => {
    await kubectl(['scale', 'rtmpserver', 'multi', '-n', ns, '--replicas=1']);
    await eventually('one pod', async () => ((await list('pods', ns, 'app.kubernetes.io/instance=multi')).length === 1 ? true : undefined));
    expect((await claimsOf(ns, 'multi')).length).toBe(6);
    // maxUnavailable holds at any scale: the budget stays at one replica
    expect(await get('pdb', ns, 'multi')).toBeDefined();
  });
});

describe('an RtmpServer made by operator 0.1.0', () => {
  const mig = `rtmp-mig-${id}`;
  let owner: Kube;
  const legacyLabels = (volume?: string) => ({
    'app.kubernetes.io/name': 'rtmpd',
    'app.kubernetes.io/instance': 'legacy',
    'app.kubernetes.io/managed-by': 'rtmpd-operator',
    ...(volume ? { 'media.fluxiot.io/volume': volume } : {}),
  });

  beforeAll(async () => {
    // The layout 0.1.0 left, made before any operator watches the namespace:
    // the RtmpServer, its Deployment and one claim per volume, with a recording.
    await restrictedNamespace(mig);
    await apply(
      rtmpServer(mig, 'legacy', {
        storage: { recordings: { storageClassName: storageClass }, keyframes: { storageClassName: storageClass } },
      }),
    );
    owner = (await get('rtmpserver', mig, 'legacy'))!;
    const ownerRef = {
      apiVersion: 'media.fluxiot.io/v1alpha1',
      kind: 'RtmpServer',
      name: 'legacy',
      uid: owner.metadata.uid,
      controller: true,
    };
    await apply(['recordings', 'keyframes'].flatMap((v) => [boundVolume(mig, `legacy-${v}`), boundVolume(mig, `${v}-legacy-0`)]));
    for (const v of ['recordings', 'keyframes']) {
      await apply({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: `legacy-${v}`, namespace: mig, labels: legacyLabels(v) },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: storageClass },
      });
    }
    mkdirSync(join(volumeDir(mig, 'legacy-recordings'), 'live/cam'), { recursive: true });
    writeFileSync(join(volumeDir(mig, 'legacy-recordings'), 'live/cam/2026-11-01T10-00-00.flv'), 'FLV recording of 0.1.0');
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: mig, labels: legacyLabels(), ownerReferences: [ownerRef] },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'legacy' } },
        template: {
          metadata: { labels: legacyLabels() },
          spec: {
            securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'rtmpd',
                image: 'ghcr.io/fluxiot/rtmpd:0.1.0',
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'recordings', mountPath: '/var/lib/rtmpd/recordings' },
                  { name: 'keyframes', mountPath: '/var/lib/rtmpd/keyframes' },
                ],
              },
            ],
            volumes: ['recordings', 'keyframes'].map((v) => ({ name: v, persistentVolumeClaim: { claimName: `legacy-${v}` } })),
          },
        },
      },
    });
    await eventually('the 0.1.0 pod running', async () =>
      (await list('pods', mig, 'app.kubernetes.io/instance=legacy')).some((p) => p.status?.phase === 'Running') ? true : undefined,
    );
    fixtures.push(await startOperators({ id: `${id}m`, watched: [mig] }));
  }, 120_000);

  it('moves it to a StatefulSet: the Deployment goes, a Job copies each claim into the first pod’s, the old claims stay', async () => {
    await eventually('the Deployment removed', async () => ((await get('deployment', mig, 'legacy')) ? undefined : true));
    const job = await eventually('the copy Job', () => get('job', mig, 'legacy-migrate'));
    // kwok completes the Job's pod without running it: run its command here, on the volumes' directories
    const [program, flag, script, ...dirs] = (job.spec.template.spec.containers[0] as { command: string[] }).command;
    expect([program, flag]).toEqual(['node', '-e']);
    for (const v of ['recordings', 'keyframes']) {
      mkdirSync(volumeDir(mig, `legacy-${v}`), { recursive: true });
      mkdirSync(volumeDir(mig, `${v}-legacy-0`), { recursive: true });
    }
    const local = dirs.map((d) => {
      const [, side, v] = /^\/(from|to)\/(recordings|keyframes)$/.exec(d)!;
      return side === 'from' ? volumeDir(mig, `legacy-${v}`) : volumeDir(mig, `${v}-legacy-0`);
    });
    const copy = spawnSync(process.execPath, ['-e', script!, ...local], { encoding: 'utf8' });
    expect(copy.stderr).toBe('');
    expect(copy.status).toBe(0);
    expect(readFileSync(join(volumeDir(mig, 'recordings-legacy-0'), 'live/cam/2026-11-01T10-00-00.flv'), 'utf8')).toBe(
      'FLV recording of 0.1.0',
    );

    const o = await waitReady(mig, 'legacy');
    expect(o.status.readyReplicas).toBe(1);
    const sts = (await get('statefulset', mig, 'legacy'))!;
    expect(sts.spec.volumeClaimTemplates.map((t: Kube) => t.metadata.name)).toEqual(['recordings', 'keyframes']);
    // the pod runs on the claims the files were copied to
    const [pod] = await list('pods', mig, 'app.kubernetes.io/instance=legacy');
    expect(pod?.metadata.name).toBe('legacy-0');
    // the old claims are kept, marked with where their files went
    for (const v of ['recordings', 'keyframes']) {
      const old = await get('pvc', mig, `legacy-${v}`);
      expect(old?.metadata.annotations?.['media.fluxiot.io/migrated-to']).toBe(`${v}-legacy-0`);
      expect(old?.metadata.deletionTimestamp).toBeUndefined();
    }
    const [migrated] = await eventsOf(mig, 'legacy', 'Migrated');
    expect(migrated?.message).toBe(
      'copied legacy-recordings to recordings-legacy-0 and legacy-keyframes to keyframes-legacy-0; the old claims stay until you delete them',
    );
  });
});
