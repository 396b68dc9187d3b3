import { loadConfig, parseConfig, flagName } from '@flux-rtmpd/rtmpd/config';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { apiVersion, kind, parseSpec, type RtmpServer, type RtmpServerSpecInput } from '../api/rtmpserver.ts';
import { checksumAnnotation, desiredState, mountPaths, preStopSleepSeconds, rtmpdArgs } from './desired.ts';

const server = (spec: RtmpServerSpecInput = {}, name = 'edge'): RtmpServer => ({
  apiVersion,
  kind,
  metadata: { name, namespace: 'media', uid: 'uid-1', generation: 3 },
  spec: parseSpec(spec),
});

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const container = (d: ReturnType<typeof desiredState>): Obj => (d.deployment as Obj).spec.template.spec.containers[0];

describe('desired state', () => {
  it('owns every object through a controller reference and labels it', () => {
    const d = desiredState(server({ storage: { reclaimPolicy: 'Delete' } }));
    for (const o of [d.configMap, d.service, d.deployment, ...d.persistentVolumeClaims]) {
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
    expect(d.persistentVolumeClaims.map((p) => p.metadata.name)).toEqual(['edge-recordings', 'edge-keyframes']);
  });

  it('leaves Retain claims unowned so they outlive the RtmpServer', () => {
    const d = desiredState(server());
    expect(d.persistentVolumeClaims).toHaveLength(2);
    for (const p of d.persistentVolumeClaims) expect(p.metadata.ownerReferences).toBeUndefined();
    expect((d.persistentVolumeClaims[0] as Obj).spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '10Gi' } },
      volumeMode: 'Filesystem',
    });
  });

  it('uses an existing claim instead of creating one', () => {
    const d = desiredState(
      server({ storage: { recordings: { existingClaim: 'nas' }, keyframes: { storageClassName: 'fast', size: '2Gi' } } }),
    );
    expect(d.persistentVolumeClaims.map((p) => p.metadata.name)).toEqual(['edge-keyframes']);
    expect((d.persistentVolumeClaims[0] as Obj).spec.storageClassName).toBe('fast');
    const volumes = (d.deployment as Obj).spec.template.spec.volumes;
    expect(volumes).toEqual([
      { name: 'recordings', persistentVolumeClaim: { claimName: 'nas' } },
      { name: 'keyframes', persistentVolumeClaim: { claimName: 'edge-keyframes' } },
    ]);
  });

  it('renders rtmpd flags by flagName(), each accepted by rtmpd itself', () => {
    const d = desiredState(
      server({
        ports: { rtmp: 1936, http: 9000 },
        snapshot: { intervalSeconds: 10, width: 640 },
        recording: { enabled: false },
        logLevel: 'debug',
        rtmpd: { chunkSize: 8192, shutdownGraceSeconds: 20 },
      }),
    );
    const args: string[] = container(d).args;
    expect(args).toContain('--rtmp-bind=0.0.0.0:1936');
    expect(args).toContain('--http-bind=0.0.0.0:9000');
    expect(args).toContain(`--storage-dir=${mountPaths.recordings}`);
    expect(args).toContain(`--keyframe-dir=${mountPaths.keyframes}`);
    expect(args).toContain('--snapshot-interval-seconds=10');
    expect(args).toContain('--recording-enabled=false');
    expect(args).toContain('--chunk-size=8192');
    for (const arg of args) {
      const [flag = '', value = ''] = arg.slice(2).split(/=(.*)/s);
      const key = Object.keys(d.config).find((k) => flagName(k) === flag);
      expect(key, arg).toBeDefined();
      // each flag alone parses with rtmpd's loader
      expect(() => loadConfig([arg], {}), arg).not.toThrow();
      expect(String(loadConfig([arg], {}).config[key as keyof typeof d.config])).toBe(value);
    }
    // all together give exactly the rendered configuration
    const loaded = loadConfig(args, {}).config;
    expect(loaded).toMatchObject(d.config);
    // and the ConfigMap holds the same options in rtmpd's config-file format
    const file = parse((d.configMap as Obj).data['rtmpd.yaml']) as Record<string, unknown>;
    expect(file).toEqual(d.config);
    expect(() => parseConfig(file)).not.toThrow();
  });

  it('renders every spec.rtmpd option it is given', () => {
    const rtmpd = {
      logFormat: 'pretty',
      chunkSize: 256,
      gopCacheMaxBytes: 0,
      playWaitSeconds: 5,
      playerMaxBufferBytes: 65536,
      playerStallTimeoutSeconds: 7,
      idleTimeoutSeconds: 9,
      maxConnections: 3,
      snapshotConcurrency: 4,
      ffmpegPath: '/usr/bin/ffmpeg',
      metricsMaxStreams: 11,
      shutdownGraceSeconds: 1,
    } as const;
    const d = desiredState(server({ rtmpd }));
    const loaded = loadConfig(rtmpdArgs(d.config), {}).config;
    expect(loaded).toMatchObject(rtmpd);
  });

  it('changes the config checksum when the rtmpd configuration changes, and only then', () => {
    const base = desiredState(server()).checksum;
    expect(desiredState(server()).checksum).toBe(base);
    expect(
      desiredState(server({ replicas: 1, podAnnotations: { a: 'b' }, resources: { limits: { cpu: 1 } }, image: 'x:1' })).checksum,
    ).toBe(base);
    expect(desiredState(server({ snapshot: { intervalSeconds: 10 } })).checksum).not.toBe(base);
    expect(desiredState(server({ logLevel: 'debug' })).checksum).not.toBe(base);
    expect(desiredState(server({ rtmpd: { chunkSize: 8192 } })).checksum).not.toBe(base);
    const d = desiredState(server());
    expect((d.deployment as Obj).spec.template.metadata.annotations[checksumAnnotation]).toBe(d.checksum);
  });

  it('builds the pod: probes, drain, scrape annotations, scheduling', () => {
    const d = desiredState(
      server({
        podAnnotations: { team: 'media' },
        nodeSelector: { pool: 'edge' },
        tolerations: [{ key: 'media', operator: 'Exists', effect: 'NoSchedule' }],
        affinity: { nodeAffinity: { x: 1 } },
        resources: { requests: { cpu: '500m' } },
        rtmpd: { shutdownGraceSeconds: 30 },
      }),
    );
    const pod = (d.deployment as Obj).spec.template;
    expect(pod.metadata.annotations).toMatchObject({
      team: 'media',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8082',
      'prometheus.io/path': '/metrics',
    });
    expect(pod.spec.nodeSelector).toEqual({ pool: 'edge' });
    expect(pod.spec.tolerations).toHaveLength(1);
    expect(pod.spec.affinity).toEqual({ nodeAffinity: { x: 1 } });
    expect(pod.spec.terminationGracePeriodSeconds).toBe(preStopSleepSeconds + 30 + 5);
    const c = container(d);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(c.lifecycle.preStop.sleep.seconds).toBe(preStopSleepSeconds);
    expect(c.resources).toEqual({ requests: { cpu: '500m' } });
    expect(c.ports).toEqual([
      { name: 'rtmp', containerPort: 1935, protocol: 'TCP' },
      { name: 'http', containerPort: 8082, protocol: 'TCP' },
    ]);
    expect(c.env).toBeUndefined();
    expect((d.deployment as Obj).spec.strategy).toEqual({ type: 'Recreate' });
  });

  it('rolls pods one by one when the volumes are shared', () => {
    const d = desiredState(
      server({ replicas: 3, storage: { recordings: { accessModes: ['ReadWriteMany'] }, keyframes: { existingClaim: 'kf' } } }),
    );
    expect((d.deployment as Obj).spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect((d.deployment as Obj).spec.replicas).toBe(3);
  });

  it('sets the standard OpenTelemetry variables when an endpoint is given', () => {
    const c = container(desiredState(server({ otel: { endpoint: 'http://collector:4318' } })));
    const env = Object.fromEntries((c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://collector:4318');
    expect(env.OTEL_SERVICE_NAME).toBe('rtmpd');
    expect(env.OTEL_RESOURCE_ATTRIBUTES).toContain('k8s.namespace.name=media');
  });

  it('builds the Service: ports, type, node ports only where allowed', () => {
    const clusterIp = desiredState(server()).service as Obj;
    expect(clusterIp.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'rtmpd', 'app.kubernetes.io/instance': 'edge' },
      ports: [
        { name: 'rtmp', protocol: 'TCP', port: 1935, targetPort: 'rtmp' },
        { name: 'http', protocol: 'TCP', port: 8082, targetPort: 'http' },
      ],
    });
    const lb = desiredState(
      server({
        service: { type: 'LoadBalancer', annotations: { a: 'b' }, nodePorts: { rtmp: 31935 }, loadBalancerSourceRanges: ['10.0.0.0/8'] },
      }),
    ).service as Obj;
    expect(lb.metadata.annotations).toEqual({ a: 'b' });
    expect(lb.spec.ports[0].nodePort).toBe(31935);
    expect(lb.spec.ports[1].nodePort).toBeUndefined();
    expect(lb.spec.loadBalancerSourceRanges).toEqual(['10.0.0.0/8']);
  });

  it('adds a ServiceMonitor only when asked', () => {
    expect(desiredState(server()).serviceMonitor).toBeUndefined();
    const sm = desiredState(server({ metrics: { serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } } } }))
      .serviceMonitor as Obj;
    expect(sm.kind).toBe('ServiceMonitor');
    expect(sm.metadata.labels.release).toBe('prom');
    expect(sm.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '15s' }]);
  });
});
