import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configKeys, loadConfig, parseConfig, reloadOf } from '@flux-rtmpd/rtmpd/config';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { apiVersion, defaultResources, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import { desiredState, publishersMetric, templateHashAnnotation } from './desired.ts';
import {
  checksumAnnotation,
  defaultProbes,
  preStopSleepSeconds,
  restrictedPodSecurityContext,
  restrictedSecurityContext,
  rtmpdImage,
} from './pod.ts';
import { configChanges, configFileName, mountPaths } from './rtmpd-config.ts';

const server = (spec: RtmpServerSpecInput = {}, name = 'edge'): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name, namespace: 'media', uid: 'uid-1', generation: 3 },
  spec: parseSpec(spec),
});

const defaults = { image: 'registry.example/rtmpd:9.9.9', transcodeImage: 'registry.example/rtmpd:9.9.9-transcode' };
const desired = (s: RtmpServer) => desiredState(s, defaults);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const container = (d: ReturnType<typeof desiredState>): Obj => (d.statefulSet as Obj).spec.template.spec.containers[0];

describe('desired state', () => {
  it('owns every object through a controller reference and labels it', () => {
    const d = desired(server({ storage: { reclaimPolicy: 'Delete', recordings: { accessModes: ['ReadWriteMany'] } } }));
    for (const o of [d.configMap, d.service, d.headlessService, d.statefulSet, ...d.persistentVolumeClaims]) {
      expect(o.metadata.namespace).toBe('media');
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'media.fluxiot.io/v1alpha1',
          kind: 'RtmpServer',
          name: 'edge',
          uid: 'uid-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(o.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': 'edge', 'app.kubernetes.io/managed-by': 'rtmpd-operator' });
    }
    expect(d.persistentVolumeClaims.map((p) => p.metadata.name)).toEqual(['edge-recordings']);
  });

  it('gives each pod claims of its own on ReadWriteOnce storage: a StatefulSet with volumeClaimTemplates', () => {
    const d = desired(server({ replicas: 3, storage: { keyframes: { storageClassName: 'fast', size: '2Gi' } } }));
    const sts = d.statefulSet as Obj;
    expect(d.persistentVolumeClaims).toEqual([]);
    expect(sts.kind).toBe('StatefulSet');
    expect(sts.spec).toMatchObject({
      replicas: 3,
      serviceName: 'edge-pods',
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' } },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
    });
    expect(sts.spec.volumeClaimTemplates).toEqual([
      {
        metadata: {
          name: 'recordings',
          labels: expect.objectContaining({ 'media.fluxiot.io/volume': 'recordings', 'app.kubernetes.io/instance': 'edge' }),
        },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } }, volumeMode: 'Filesystem' },
      },
      {
        metadata: { name: 'keyframes', labels: expect.objectContaining({ 'media.fluxiot.io/volume': 'keyframes' }) },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '2Gi' } },
          storageClassName: 'fast',
          volumeMode: 'Filesystem',
        },
      },
    ]);
    // the templates' claims are mounted by name; only the ConfigMap, /tmp and the fleet token's Secret are pod volumes
    expect(sts.spec.template.spec.volumes.filter((v: Obj) => !v.secret).map((v: Obj) => v.name)).toEqual(['config', 'tmp']);
    expect(container(d).volumeMounts).toEqual(
      expect.arrayContaining([
        { name: 'recordings', mountPath: mountPaths.recordings },
        { name: 'keyframes', mountPath: mountPaths.keyframes },
      ]),
    );
    // Delete: the claims go with the StatefulSet, and so with the RtmpServer
    const deleting = desired(server({ storage: { reclaimPolicy: 'Delete' } })).statefulSet as Obj;
    expect(deleting.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Delete', whenScaled: 'Retain' });
  });

  it("keeps an existing StatefulSet's claim sizes in its templates (they cannot change)", () => {
    const d = desired(server({ storage: { recordings: { size: '50Gi' } } }));
    const kept = desiredState(server({ storage: { recordings: { size: '50Gi' } } }), defaults, {
      claimTemplateSizes: { recordings: '10Gi' },
    });
    const size = (x: ReturnType<typeof desiredState>, i: number) =>
      (x.statefulSet as Obj).spec.volumeClaimTemplates[i].spec.resources.requests.storage;
    expect(size(d, 0)).toBe('50Gi');
    expect(size(kept, 0)).toBe('10Gi');
    expect(size(kept, 1)).toBe('1Gi');
  });

  it('shares a ReadWriteMany claim the operator makes, or an existing claim, among all pods', () => {
    const d = desired(
      server({
        replicas: 2,
        storage: { recordings: { existingClaim: 'nas' }, keyframes: { accessModes: ['ReadWriteMany'], storageClassName: 'nfs' } },
      }),
    );
    expect(d.persistentVolumeClaims.map((p) => p.metadata.name)).toEqual(['edge-keyframes']);
    expect((d.persistentVolumeClaims[0] as Obj).spec).toEqual({
      accessModes: ['ReadWriteMany'],
      resources: { requests: { storage: '1Gi' } },
      storageClassName: 'nfs',
      volumeMode: 'Filesystem',
    });
    // Retain: not owned, so the claim outlives the RtmpServer
    expect(d.persistentVolumeClaims[0]?.metadata.ownerReferences).toBeUndefined();
    expect((d.statefulSet as Obj).spec.volumeClaimTemplates).toEqual([]);
    expect((d.statefulSet as Obj).spec.template.spec.volumes).toEqual([
      { name: 'config', configMap: { name: 'edge-rtmpd' } },
      { name: 'recordings', persistentVolumeClaim: { claimName: 'nas' } },
      { name: 'keyframes', persistentVolumeClaim: { claimName: 'edge-keyframes' } },
      { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
      { name: expect.stringMatching(/^secret-/), secret: { secretName: 'edge-fleet-token' } },
    ]);
  });

  it('gives each pod a DNS name through a headless Service', () => {
    expect((desired(server()).headlessService as Obj).spec).toEqual({
      clusterIP: 'None',
      selector: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' },
      ports: [
        { name: 'rtmp', protocol: 'TCP', port: 1935, targetPort: 'rtmp' },
        { name: 'http', protocol: 'TCP', port: 8082, targetPort: 'http' },
      ],
    });
  });

  it('mounts the ConfigMap and starts rtmpd with it; binds and directories are arguments', () => {
    const d = desired(
      server({
        ports: { rtmp: 1936, http: 9000 },
        snapshot: { intervalSeconds: 10, width: 640 },
        recording: { enabled: false },
        hls: { variant: 'mpegts', rules: [{ app: 'studio', lowLatency: true }] },
        logLevel: 'debug',
        rtmpd: { chunkSize: 8192, shutdownGraceSeconds: 20 },
      }),
    );
    expect(container(d).args).toEqual([
      `--config=${mountPaths.config}/${configFileName}`,
      '--rtmp-bind=0.0.0.0:1936',
      '--http-bind=0.0.0.0:9000',
      '--health-bind=0.0.0.0:8081',
      `--storage-dir=${mountPaths.recordings}`,
      `--keyframe-dir=${mountPaths.keyframes}`,
      '--fleet-name=edge',
      `--fleet-token-file=${mountPaths.secrets}/edge-fleet-token/token`,
    ]);
    expect(container(d).volumeMounts).toContainEqual({ name: 'config', mountPath: mountPaths.config, readOnly: true });
    expect((d.statefulSet as Obj).spec.template.spec.volumes).toContainEqual({ name: 'config', configMap: { name: 'edge-rtmpd' } });
    const file = parse((d.configMap as Obj).data[configFileName]) as Record<string, unknown>;
    expect(file).toMatchObject({ logLevel: 'debug', snapshotIntervalSeconds: 10, recordingEnabled: false, chunkSize: 8192 });
    // MPEG-TS for every stream but those a rule gives Low-Latency HLS (in fMP4): what rtmpd takes
    expect(file).toMatchObject({ hlsVariant: 'mpegts', hlsLowLatency: false, hlsRules: [{ app: 'studio', lowLatency: true }] });
    expect(parseConfig(d.config).hlsVariant).toBe('mpegts');
    expect(Object.keys(file)).not.toContain('rtmpBind');
  });

  it('renders every spec.rtmpd option so that rtmpd, given the pod args and the file, runs with exactly the rendered configuration', () => {
    const rtmpd = {
      logFormat: 'pretty',
      chunkSize: 256,
      gopCacheMaxBytes: 0,
      playWaitSeconds: 5,
      playerMaxBufferBytes: 65536,
      playerStallTimeoutSeconds: 7,
      idleTimeoutSeconds: 19,
      maxConnections: 3,
      snapshotConcurrency: 4,
      ffmpegPath: '/usr/bin/ffmpeg',
      metricsMaxStreams: 11,
      shutdownGraceSeconds: 1,
    } as const;
    const d = desired(server({ rtmpd, snapshot: { quality: 7 } }));
    const dir = mkdtempSync(join(tmpdir(), 'desired-'));
    try {
      // The pod sees the ConfigMap's key as a file under the mount path.
      writeFileSync(join(dir, configFileName), (d.configMap as Obj).data[configFileName]);
      const args = (container(d).args as string[]).map((a) => (a.startsWith('--config=') ? a.replace(mountPaths.config, dir) : a));
      const loaded = loadConfig(args, {}).config;
      expect(loaded).toEqual(parseConfig(d.config));
      expect(loaded).toMatchObject({ ...rtmpd, snapshotQuality: 7 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rolls the pods (pod template checksum) only for options rtmpd cannot take live', () => {
    const annotation = (spec: RtmpServerSpecInput) =>
      ((desired(server(spec)).statefulSet as Obj).spec.template.metadata.annotations as Record<string, string>)[checksumAnnotation];
    const base = annotation({});
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(annotation({ replicas: 3, podAnnotations: { a: 'b' }, image: 'x:1' })).toBe(base);
    // live: the mounted file changes, the template does not
    expect(annotation({ logLevel: 'debug' })).toBe(base);
    expect(annotation({ snapshot: { quality: 9, width: 320, keep: 3 } })).toBe(base);
    expect(annotation({ rtmpd: { chunkSize: 8192, maxConnections: 5, idleTimeoutSeconds: 45 } })).toBe(base);
    // restart
    expect(annotation({ snapshot: { intervalSeconds: 10 } })).not.toBe(base);
    expect(annotation({ recording: { enabled: false } })).not.toBe(base);
    expect(annotation({ rtmpd: { gopCacheMaxBytes: 0 } })).not.toBe(base);
    for (const key of configKeys) expect(['live', 'restart'], key).toContain(reloadOf(key));
  });

  it('tells live from restart changes between the file the pods have and the desired one', () => {
    const d = desired(server({ logLevel: 'debug', snapshot: { intervalSeconds: 5 } }));
    const before = (desired(server()).configMap as Obj).data[configFileName] as string;
    expect(configChanges(before, d.config)).toEqual({ live: ['logLevel'], restart: ['snapshotIntervalSeconds'] });
    expect(configChanges((d.configMap as Obj).data[configFileName] as string, d.config)).toEqual({ live: [], restart: [] });
    const hash = (spec: RtmpServerSpecInput) => (desired(server(spec)).statefulSet as Obj).metadata.annotations[templateHashAnnotation];
    expect(hash({ logLevel: 'debug' })).toBe(hash({}));
    expect(hash({ resources: { limits: { cpu: 1 } } })).not.toBe(hash({}));
  });

  it('builds the pod: probes, drain, scrape annotations, scheduling', () => {
    const d = desired(
      server({
        podAnnotations: { team: 'media' },
        nodeSelector: { pool: 'edge' },
        tolerations: [{ key: 'media', operator: 'Exists', effect: 'NoSchedule' }],
        affinity: {
          nodeAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 1, preference: { matchExpressions: [{ key: 'pool', operator: 'In', values: ['edge'] }] } },
            ],
          },
        },
        resources: { requests: { cpu: '500m' } },
        rtmpd: { shutdownGraceSeconds: 30 },
      }),
    );
    const pod = (d.statefulSet as Obj).spec.template;
    expect(pod.metadata.annotations).toMatchObject({
      team: 'media',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8082',
      'prometheus.io/path': '/metrics',
    });
    expect(pod.spec.nodeSelector).toEqual({ pool: 'edge' });
    expect(pod.spec.tolerations).toHaveLength(1);
    expect(pod.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight).toBe(1);
    expect(pod.spec.terminationGracePeriodSeconds).toBe(preStopSleepSeconds + 30 + 5);
    const c = container(d);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
    expect(c.lifecycle.preStop.sleep.seconds).toBe(preStopSleepSeconds);
    // a failed start's last log line reaches the status (its CrashLoopBackOff cause)
    expect(c.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(c.resources).toEqual({ requests: { cpu: '500m' } });
    expect(c.ports).toEqual([
      { name: 'rtmp', containerPort: 1935, protocol: 'TCP' },
      { name: 'http', containerPort: 8082, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(c.env).toEqual([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'RTMPD_FLEET_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'RTMPD_FLEET_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'RTMPD_FLEET_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'RTMPD_FLEET_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ]);
  });

  it('runs the pods as the restricted Pod Security level asks, unless the spec overrides a setting', () => {
    const pod = (d: ReturnType<typeof desiredState>) => (d.statefulSet as Obj).spec.template.spec;
    const plain = desired(server());
    expect(pod(plain).securityContext).toEqual(restrictedPodSecurityContext);
    expect(container(plain).securityContext).toEqual(restrictedSecurityContext);
    expect(container(plain).volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    const custom = desired(
      server({
        podSecurityContext: { runAsUser: 2000, fsGroup: 3000 },
        securityContext: { capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] } },
      }),
    );
    expect(pod(custom).securityContext).toEqual({ ...restrictedPodSecurityContext, runAsUser: 2000, fsGroup: 3000 });
    expect(container(custom).securityContext).toEqual({
      ...restrictedSecurityContext,
      capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] },
    });
  });

  it("requests resources by default (not BestEffort), and takes the spec's instead", () => {
    expect(container(desired(server())).resources).toEqual(defaultResources);
    expect(container(desired(server({ resources: { requests: { cpu: '1' } } }))).resources).toEqual({ requests: { cpu: '1' } });
  });

  it("runs the operator's default image unless the spec pins one", () => {
    expect(container(desired(server())).image).toBe(defaults.image);
    expect(container(desired(server({ image: 'mine/rtmpd:1' }))).image).toBe('mine/rtmpd:1');
  });

  it('runs the default image whose ffmpeg transcodes when spec.transcode has rules, unless the spec pins an image', () => {
    const transcode = { rules: [{ app: 'live', renditions: [{ name: '240p', height: 240, videoBitrate: 400 }] }] };
    const image = (spec: RtmpServerSpecInput) => rtmpdImage(parseSpec(spec), defaults);
    expect(image({ transcode })).toBe(defaults.transcodeImage);
    expect(container(desired(server({ transcode }))).image).toBe(defaults.transcodeImage);
    expect(image({ transcode: { rules: [] } })).toBe(defaults.image);
    expect(image({ transcode: { maxProcesses: 2 } })).toBe(defaults.image);
    expect(image({ transcode, image: 'mine/rtmpd:1-ffmpeg' })).toBe('mine/rtmpd:1-ffmpeg');
  });

  it('probes /health with media-server timings, each overridable; liveness on the health port', () => {
    const c = container(desired(server({ probes: { liveness: { failureThreshold: 10 } } })));
    expect(c.startupProbe).toEqual({ httpGet: { path: '/health', port: 'http' }, ...defaultProbes.startup });
    expect(c.livenessProbe).toEqual({ httpGet: { path: '/health', port: 'health' }, ...defaultProbes.liveness, failureThreshold: 10 });
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/ready', port: 'http' }, ...defaultProbes.readiness });
  });

  it('serves liveness on spec.ports.health, a container port no Service exposes', () => {
    const d = desired(server({ ports: { health: 9000 } }));
    expect(container(d).livenessProbe.httpGet).toEqual({ path: '/health', port: 'health' });
    expect(container(d).ports).toContainEqual({ name: 'health', containerPort: 9000, protocol: 'TCP' });
    expect(container(d).args).toContain('--health-bind=0.0.0.0:9000');
    for (const svc of [d.service, d.headlessService] as Obj[])
      expect(svc.spec.ports.map((p: { name: string }) => p.name)).toEqual(['rtmp', 'http']);
  });

  it('asks /health on the HTTP port for liveness when spec.probes.liveness.port is http: no --health-bind, no health port', () => {
    // a health port below 1024 would need the unprivileged-port sysctl if rtmpd still opened it
    const d = desired(server({ ports: { health: 81 }, probes: { liveness: { port: 'http', failureThreshold: 10 } } }));
    const c = container(d);
    expect(c.livenessProbe).toEqual({ httpGet: { path: '/health', port: 'http' }, ...defaultProbes.liveness, failureThreshold: 10 });
    expect(c.ports.map((p: { name: string }) => p.name)).toEqual(['rtmp', 'http']);
    expect(c.args.filter((a: string) => a.startsWith('--health'))).toEqual([]);
    expect((d.statefulSet as Obj).spec.template.spec.securityContext.sysctls).toBeUndefined();
  });

  it('autoscales the RtmpServer itself on live publishers per pod, only when spec.autoscaling is set', () => {
    expect(desired(server({ replicas: 3 })).horizontalPodAutoscaler).toBeUndefined();
    const d = desired(server({ replicas: 2, autoscaling: { maxReplicas: 8, targetPublishersPerPod: 50 } }));
    const hpa = d.horizontalPodAutoscaler as Obj;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.metadata).toMatchObject({ name: 'edge', namespace: 'media', ownerReferences: [{ kind: 'RtmpServer', uid: 'uid-1' }] });
    expect(hpa.spec).toEqual({
      // the scale subresource: the autoscaler writes spec.replicas, the operator carries it to the StatefulSet
      scaleTargetRef: { apiVersion: 'media.fluxiot.io/v1alpha1', kind: 'RtmpServer', name: 'edge' },
      minReplicas: 1,
      maxReplicas: 8,
      metrics: [{ type: 'Pods', pods: { metric: { name: 'rtmpd_publishers' }, target: { type: 'AverageValue', averageValue: '50' } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    });
    expect((d.statefulSet as Obj).spec.replicas).toBe(2);
    const tuned = desired(
      server({ autoscaling: { minReplicas: 2, maxReplicas: 4, targetPublishersPerPod: 1, scaleDownStabilizationSeconds: 0 } }),
    ).horizontalPodAutoscaler as Obj;
    expect(tuned.spec).toMatchObject({ minReplicas: 2, maxReplicas: 4, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } });
  });

  it("reads the metric that the chart's prometheus-adapter rule serves", () => {
    const rulesFile = new URL('../../../charts/rtmpd-operator/files/prometheus-adapter/rules.yaml', import.meta.url);
    const { rules } = parse(readFileSync(rulesFile, 'utf8')) as { rules: { seriesQuery: string; name: { as: string } }[] };
    expect(rules).toHaveLength(1);
    expect(rules[0]!.name.as).toBe(publishersMetric);
    expect(rules[0]!.seriesQuery).toMatch(new RegExp(`^${publishersMetric}\\{`));
  });

  it('spreads several replicas over nodes and keeps a PodDisruptionBudget that holds at any replica count, unless told otherwise', () => {
    const spec = (d: ReturnType<typeof desiredState>) => (d.statefulSet as Obj).spec.template.spec;
    const one = desired(server());
    const three = desired(server({ replicas: 3 }));
    // the autoscaler changes spec.replicas: the budget is the same at any scale, never created or deleted by scaling
    expect(one.podDisruptionBudget).toEqual(three.podDisruptionBudget);
    const autoscaled = (replicas: number) =>
      desired(server({ replicas, autoscaling: { minReplicas: 1, maxReplicas: 10, targetPublishersPerPod: 10 } }));
    expect(autoscaled(1).podDisruptionBudget).toEqual(three.podDisruptionBudget);
    expect(autoscaled(10).podDisruptionBudget).toEqual(three.podDisruptionBudget);
    expect(
      (desired(server({ replicas: 1, podDisruptionBudget: { maxUnavailable: '25%' } })).podDisruptionBudget as Obj).spec.maxUnavailable,
    ).toBe('25%');
    // the same template at any scale: scaling never replaces a running pod
    expect(spec(one)).toEqual(spec(desired(server({ replicas: 3 }))));
    expect(spec(three).topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' } },
      },
    ]);
    expect((three.podDisruptionBudget as Obj).spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' } },
    });
    const placed = desired(server({ replicas: 3, affinity: { podAntiAffinity: {} }, podDisruptionBudget: { enabled: false } }));
    expect(spec(placed).topologySpreadConstraints).toBeUndefined();
    expect(placed.podDisruptionBudget).toBeUndefined();
    const zones = desired(
      server({
        replicas: 3,
        topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }],
      }),
    );
    expect(spec(zones).topologySpreadConstraints[0]).toMatchObject({
      maxSkew: 2,
      labelSelector: { matchLabels: { 'app.kubernetes.io/instance': 'edge' } },
    });
  });

  it('sets the standard OpenTelemetry variables when an endpoint is given', () => {
    const c = container(desired(server({ otel: { endpoint: 'http://collector:4318' } })));
    const env = Object.fromEntries((c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://collector:4318');
    expect(env.OTEL_SERVICE_NAME).toBe('rtmpd');
    expect(env.OTEL_RESOURCE_ATTRIBUTES).toBe('k8s.namespace.name=$(POD_NAMESPACE),k8s.statefulset.name=edge,k8s.pod.name=$(POD_NAME)');
  });

  it('builds the Service: ports, type, node ports only where allowed', () => {
    const clusterIp = desired(server()).service as Obj;
    expect(clusterIp.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' },
      ports: [
        { name: 'rtmp', protocol: 'TCP', port: 1935, targetPort: 'rtmp' },
        { name: 'http', protocol: 'TCP', port: 8082, targetPort: 'http' },
      ],
    });
    const lb = desired(
      server({
        service: {
          type: 'LoadBalancer',
          annotations: { a: 'b' },
          nodePorts: { rtmp: 31935 },
          loadBalancerSourceRanges: ['10.0.0.0/8'],
          externalTrafficPolicy: 'Local',
        },
      }),
    ).service as Obj;
    expect(lb.metadata.annotations).toEqual({ a: 'b' });
    expect(lb.spec.ports[0].nodePort).toBe(31935);
    expect(lb.spec.ports[1].nodePort).toBeUndefined();
    expect(lb.spec.loadBalancerSourceRanges).toEqual(['10.0.0.0/8']);
    expect(lb.spec.externalTrafficPolicy).toBe('Local');
    expect((desired(server({ service: { type: 'NodePort' } })).service as Obj).spec.externalTrafficPolicy).toBeUndefined();
  });

  it('adds a ServiceMonitor only when asked', () => {
    expect(desired(server()).serviceMonitor).toBeUndefined();
    const sm = desired(server({ metrics: { serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } } } }))
      .serviceMonitor as Obj;
    expect(sm.kind).toBe('ServiceMonitor');
    expect(sm.metadata.labels.release).toBe('prom');
    expect(sm.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '15s' }]);
  });

  it("gives the ServiceMonitor the API token's Secret when /metrics needs the token", () => {
    const auth = { apiTokenSecret: { name: 'api', key: 'token' }, metricsAccess: 'token' };
    const sm = desired(server({ metrics: { serviceMonitor: { enabled: true } }, auth })).serviceMonitor as Obj;
    expect(sm.spec.endpoints[0].authorization).toEqual({ type: 'Bearer', credentials: { name: 'api', key: 'token' } });
    const open = desired(server({ metrics: { serviceMonitor: { enabled: true } }, auth: { ...auth, metricsAccess: 'open' } }))
      .serviceMonitor as Obj;
    expect(open.spec.endpoints[0].authorization).toBeUndefined();
  });

  it('mounts the Secrets spec.auth names and points rtmpd at them; the Secrets enter no ConfigMap, arg or env', () => {
    const d = desired(
      server({
        auth: {
          rules: [
            { app: 'live', actions: ['publish'], method: 'keys', keysSecret: { name: 'stream.keys' } },
            { app: 'events', method: 'signed', secret: { name: 'hmac', key: 'secret' } },
            { method: 'jwt', keySecret: { name: 'hmac', key: 'jwt.pem' }, audience: 'rtmpd' },
            { method: 'callback', url: 'http://auth.internal/rtmp', timeoutMs: 500 },
          ],
          apiTokenSecret: { name: 'api', key: 'token' },
          apiReadAccess: 'token',
        },
      }),
    );
    const file = parse((d.configMap as Obj).data[configFileName] as string) as Obj;
    expect(file.authRules).toEqual([
      { app: 'live', key: '*', actions: ['publish'], method: 'keys', keys: `${mountPaths.secrets}/stream.keys` },
      { app: 'events', key: '*', actions: ['publish', 'play'], method: 'signed', secretFile: `${mountPaths.secrets}/hmac/secret` },
      { app: '*', key: '*', actions: ['publish', 'play'], method: 'jwt', keyFile: `${mountPaths.secrets}/hmac/jwt.pem`, audience: 'rtmpd' },
      {
        app: '*',
        key: '*',
        actions: ['publish', 'play'],
        method: 'callback',
        url: 'http://auth.internal/rtmp',
        timeoutMs: 500,
        cacheSeconds: 10,
        failOpen: false,
      },
    ]);
    expect(file).toMatchObject({ apiTokenFile: `${mountPaths.secrets}/api/token`, apiReadAccess: 'token', metricsAccess: 'open' });
    // What the pods get is what rtmpd accepts.
    expect(() => parseConfig(d.config)).not.toThrow();
    const pod = (d.statefulSet as Obj).spec.template.spec;
    const secretVolumes = (pod.volumes as Obj[]).filter((v) => v.secret);
    expect(secretVolumes.map((v) => v.secret.secretName)).toEqual(['api', 'edge-fleet-token', 'hmac', 'stream.keys']); // one each, sorted
    for (const v of secretVolumes) expect(v.name).toMatch(/^secret-[0-9a-f]{12}$/);
    expect((container(d).volumeMounts as Obj[]).filter((m) => m.mountPath.startsWith(mountPaths.secrets))).toEqual(
      secretVolumes.map((v) => ({ name: v.name, mountPath: `${mountPaths.secrets}/${v.secret.secretName}`, readOnly: true })),
    );
    // the env holds only what the kubelet injects about the pod, nothing from a Secret
    expect((container(d).env as Obj[]).map((e) => e.valueFrom?.fieldRef?.fieldPath)).toEqual([
      'metadata.name',
      'metadata.namespace',
      'status.podIP',
      'metadata.name',
      'metadata.uid',
      'metadata.namespace',
      'status.podIP',
    ]);
    // Changing a rule is live (rtmpd re-reads its file); naming another Secret changes the pod and rolls it.
    const moreRules = desired(server({ auth: { rules: [{ method: 'open' }], apiTokenSecret: { name: 'api', key: 'token' } } }));
    expect(configChanges((d.configMap as Obj).data[configFileName] as string, moreRules.config).restart).toEqual([]);
  });

  it("mounts spec.webhooks.secret like spec.auth's Secrets and points rtmpd's --webhook-secret-file at it; URLs come through spec.rtmpd", () => {
    const spec = { webhooks: { secret: { name: 'hooks', key: 'signing' } }, rtmpd: { webhookUrls: ['https://hooks.example.com/rtmp'] } };
    const d = desired(server(spec));
    const file = parse((d.configMap as Obj).data[configFileName] as string) as Obj;
    expect(file).toMatchObject({
      webhookSecretFile: `${mountPaths.secrets}/hooks/signing`,
      webhookUrls: ['https://hooks.example.com/rtmp'],
    });
    expect(() => parseConfig(d.config)).not.toThrow();
    const volumes = ((d.statefulSet as Obj).spec.template.spec.volumes as Obj[]).filter((v) => v.secret);
    expect(volumes.map((v) => v.secret.secretName)).toEqual(['edge-fleet-token', 'hooks']);
    const hooks = volumes.find((v) => v.secret.secretName === 'hooks')!;
    expect(container(d).volumeMounts).toContainEqual({ name: hooks.name, mountPath: `${mountPaths.secrets}/hooks`, readOnly: true });
    // The key's content enters no ConfigMap: only its path.
    expect(JSON.stringify(d.configMap)).not.toContain('whsec_');
    // Unset: unsigned, and no Secret mounted.
    expect(parse((desired(server()).configMap as Obj).data[configFileName] as string)).toMatchObject({ webhookSecretFile: '' });
    // Adding a URL is live; naming the Secret rolls the pods (it is a new volume).
    const before = (desired(server({ webhooks: spec.webhooks })).configMap as Obj).data[configFileName] as string;
    expect(configChanges(before, d.config)).toEqual({ live: ['webhookUrls'], restart: [] });
  });

  it('renders spec.forwards as rtmpd forward rules: URLs kept in Secrets mounted and named by path only, a changed rule live', () => {
    const forwards = {
      rules: [
        {
          app: 'live',
          key: 'show',
          urlSecrets: [
            { name: 'restream', key: 'youtube' },
            { name: 'restream', key: 'twitch' },
          ],
        },
        { app: 'live', urls: ['rtmp://origin-2.example.com/live/{key}'] },
      ],
      caSecret: { name: 'origin-ca', key: 'ca.crt' },
    };
    const d = desired(server({ forwards }));
    const file = parse((d.configMap as Obj).data[configFileName] as string) as Obj;
    expect(file).toMatchObject({
      forwardRules: [
        {
          app: 'live',
          key: 'show',
          urls: [],
          urlFiles: [`${mountPaths.secrets}/restream/youtube`, `${mountPaths.secrets}/restream/twitch`],
        },
        { app: 'live', key: '*', urls: ['rtmp://origin-2.example.com/live/{key}'], urlFiles: [] },
      ],
      forwardTlsCaFile: `${mountPaths.secrets}/origin-ca/ca.crt`,
    });
    expect(() => parseConfig(d.config)).not.toThrow();
    const volumes = ((d.statefulSet as Obj).spec.template.spec.volumes as Obj[]).filter((v) => v.secret);
    expect(volumes.map((v) => v.secret.secretName)).toEqual(['edge-fleet-token', 'origin-ca', 'restream']);
    // A URL that is not rtmp[s]://host/app/key is refused by the schema (and the CRD).
    expect(() => parseSpec({ forwards: { rules: [{ urls: ['http://example.com/live/x'] }] } })).toThrow();
    // Unset: no rules, and no Secret mounted.
    expect(parse((desired(server()).configMap as Obj).data[configFileName] as string)).toMatchObject({
      forwardRules: [],
      forwardTlsCaFile: '',
    });
    // Another URL is live; naming another Secret rolls the pods (a new volume).
    const fewer = desired(server({ forwards: { ...forwards, rules: [forwards.rules[0]!] } }));
    expect(configChanges((fewer.configMap as Obj).data[configFileName] as string, d.config)).toEqual({
      live: ['forwardRules'],
      restart: [],
    });
  });

  it('renders spec.transcode as rtmpd transcode rules, ffmpeg path and cap, a changed ladder live', () => {
    const transcode = {
      rules: [{ app: 'live', renditions: [{ name: '480p', height: 480, videoBitrate: 1200 }] }],
      ffmpegPath: '/opt/ffmpeg/bin/ffmpeg',
      maxProcesses: 2,
    };
    const d = desired(server({ transcode }));
    const file = parse((d.configMap as Obj).data[configFileName] as string) as Obj;
    expect(file).toMatchObject({
      transcodeRules: [
        { app: 'live', key: '*', renditions: [{ name: '480p', height: 480, videoBitrate: 1200, audioBitrate: 128, codec: 'h264' }] },
      ],
      transcodeFfmpegPath: '/opt/ffmpeg/bin/ffmpeg',
      transcodeMaxProcesses: 2,
    });
    expect(() => parseConfig(d.config)).not.toThrow();
    // What rtmpd refuses, the spec refuses: an odd height, more than 8 renditions.
    expect(() => parseSpec({ transcode: { rules: [{ renditions: [{ name: 'x', height: 481, videoBitrate: 500 }] }] } })).toThrow();
    const nine = Array.from({ length: 9 }, (_, i) => ({ name: `r${i}`, height: 240, videoBitrate: 300 }));
    expect(() => parseSpec({ transcode: { rules: [{ renditions: nine }] } })).toThrow();
    // Unset: rtmpd's defaults, no rules.
    expect(parse((desired(server()).configMap as Obj).data[configFileName] as string)).toMatchObject({
      transcodeRules: [],
      transcodeFfmpegPath: 'ffmpeg',
      transcodeMaxProcesses: 4,
    });
    const another = desired(
      server({ transcode: { ...transcode, rules: [{ app: 'studio', renditions: transcode.rules[0]!.renditions }] } }),
    );
    expect(configChanges((another.configMap as Obj).data[configFileName] as string, d.config)).toEqual({
      live: ['transcodeRules'],
      restart: [],
    });
  });

  it('serves RTMPS (and HTTPS) from spec.tls: the Secret mounted whole, the ports on the pod and both Services, the file paths to rtmpd', () => {
    const d = desired(server({ tls: { secretName: 'edge-tls', https: true }, service: { type: 'NodePort' } }));
    const file = parse((d.configMap as Obj).data[configFileName] as string) as Obj;
    expect(file).toMatchObject({
      rtmpsBind: '0.0.0.0:443',
      httpsBind: '0.0.0.0:8443',
      tlsCertFile: `${mountPaths.secrets}/edge-tls/tls.crt`,
      tlsKeyFile: `${mountPaths.secrets}/edge-tls/tls.key`,
    });
    expect(() => parseConfig(d.config)).not.toThrow();
    const pod = (d.statefulSet as Obj).spec.template.spec as Obj;
    const volume = (pod.volumes as Obj[]).find((v) => v.secret?.secretName === 'edge-tls')!;
    // Not with subPath: the kubelet's ..data swap must reach the files for a renewal to arrive without a restart.
    const mount = (container(d).volumeMounts as Obj[]).find((m) => m.name === volume.name)!;
    expect(mount).toEqual({ name: volume.name, mountPath: `${mountPaths.secrets}/edge-tls`, readOnly: true });
    expect(container(d).ports).toEqual([
      { name: 'rtmp', containerPort: 1935, protocol: 'TCP' },
      { name: 'http', containerPort: 8082, protocol: 'TCP' },
      { name: 'rtmps', containerPort: 443, protocol: 'TCP' },
      { name: 'https', containerPort: 8443, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
    ]);
    // rtmpd runs without privileges: port 443 is opened to it by the pod's safe sysctl.
    expect(pod.securityContext.sysctls).toEqual([{ name: 'net.ipv4.ip_unprivileged_port_start', value: '443' }]);
    for (const svc of [d.service, d.headlessService] as Obj[])
      expect(svc.spec.ports).toEqual(
        expect.arrayContaining([
          { name: 'rtmps', protocol: 'TCP', port: 443, targetPort: 'rtmps' },
          { name: 'https', protocol: 'TCP', port: 8443, targetPort: 'https' },
        ]),
      );
    expect(JSON.stringify(d.configMap)).not.toContain('BEGIN');

    // Without https only RTMPS; without spec.tls nothing of it, and no sysctl.
    const rtmpsOnly = desired(server({ tls: { secretName: 'edge-tls', rtmpsPort: 1936 } }));
    expect((rtmpsOnly.service as Obj).spec.ports.map((p: Obj) => p.name)).toEqual(['rtmp', 'http', 'rtmps']);
    expect(parse((rtmpsOnly.configMap as Obj).data[configFileName] as string)).toMatchObject({ rtmpsBind: '0.0.0.0:1936', httpsBind: '' });
    expect((rtmpsOnly.statefulSet as Obj).spec.template.spec.securityContext.sysctls).toBeUndefined();
    const plain = desired(server());
    expect((plain.service as Obj).spec.ports.map((p: Obj) => p.name)).toEqual(['rtmp', 'http']);
    expect(parse((plain.configMap as Obj).data[configFileName] as string)).not.toHaveProperty('rtmpsBind');
    expect(() => parseSpec({ tls: { secretName: 'x', rtmpsPort: 8443, https: true } })).not.toThrow(); // CEL, checked by the API server
  });

  it("renders spec.service.proxyProtocol as rtmpd's PROXY protocol options, RTMP and RTMPS by default, and rolls the pods for it", () => {
    const file = (spec: RtmpServerSpecInput) => parse((desired(server(spec)).configMap as Obj).data[configFileName] as string) as Obj;
    const checksum = (spec: RtmpServerSpecInput) =>
      ((desired(server(spec)).statefulSet as Obj).spec.template.metadata.annotations as Record<string, string>)[checksumAnnotation];
    const nlb = { type: 'LoadBalancer' as const, proxyProtocol: { from: ['10.0.0.0/8', 'fd00::/8'] } };
    expect(file({ service: nlb })).toMatchObject({ proxyProtocol: ['rtmp', 'rtmps'], proxyProtocolFrom: ['10.0.0.0/8', 'fd00::/8'] });
    expect(file({ service: { proxyProtocol: { from: ['192.168.0.0/16'], listeners: ['rtmp', 'http'] } } })).toMatchObject({
      proxyProtocol: ['rtmp', 'http'],
      proxyProtocolFrom: ['192.168.0.0/16'],
    });
    expect(file({})).not.toHaveProperty('proxyProtocol');
    expect(checksum({ service: nlb })).not.toBe(checksum({ service: { type: 'LoadBalancer' } }));
    // Not a spec.rtmpd option too: one field sets it.
    expect(file({ rtmpd: { proxyProtocolFrom: ['10.0.0.0/8'] } as never })).not.toHaveProperty('proxyProtocolFrom');
    expect(() => parseSpec({ service: { proxyProtocol: { from: [] } } })).toThrow();
  });

  it('renders no auth at all by default: rtmpd stays open and says so', () => {
    const file = parse((desired(server()).configMap as Obj).data[configFileName] as string) as Obj;
    expect(file).toMatchObject({ authRules: [], apiTokenFile: '', apiReadAccess: 'open', metricsAccess: 'open' });
    const secrets = ((desired(server()).statefulSet as Obj).spec.template.spec.volumes as Obj[]).filter((v) => v.secret);
    expect(secrets.map((v) => v.secret.secretName)).toEqual(['edge-fleet-token']); // the fleet's own, no user's
  });
});

describe('the Service, for a spec the CRD would refuse', () => {
  // parseSpec takes these; the CRD's CEL rules refuse them at the API server. An object stored
  // before those rules existed must still not make the builder write fields its type cannot take.
  it('gives a ClusterIP Service no nodePort and a NodePort Service no loadBalancerSourceRanges', () => {
    const clusterIp = desired(server({ service: { type: 'ClusterIP', nodePorts: { rtmp: 31935 } } })).service as Obj;
    expect(clusterIp.spec.ports.map((p: Obj) => p.nodePort)).toEqual([undefined, undefined]);
    const nodePort = desired(server({ service: { type: 'NodePort', loadBalancerSourceRanges: ['10.0.0.0/8'] } })).service as Obj;
    expect(nodePort.spec.loadBalancerSourceRanges).toBeUndefined();
  });
});
