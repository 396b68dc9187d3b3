// Pure builders: the objects an RtmpServer should own, computed from the
// resource alone. No I/O here, so every field is unit-tested without a cluster.
import { createHash } from 'node:crypto';
import { configDefault, configSchema, flagName, reloadOf, type AuthRule, type Config, type ConfigKey } from '@flux-rtmpd/rtmpd/config';
import { parse, stringify } from 'yaml';
import {
  apiVersion,
  defaultResources,
  kind,
  operatorOwnedOptions,
  passthroughOptions,
  rtmpApp,
  type AuthRuleSpec,
  type RtmpServer,
  type RtmpServerSpec,
  type RtmpServerStatus,
} from '../api/rtmpserver.ts';
import { childNames } from './names.ts';

export const fieldManager = 'rtmpd-operator';
export const checksumAnnotation = 'media.fluxiot.io/config-checksum';
/** On the workload: templateHash() of the pod template the operator last applied. */
export const templateHashAnnotation = 'media.fluxiot.io/pod-template-hash';
export const managedBy = { 'app.kubernetes.io/managed-by': 'rtmpd-operator' } as const;
export const instanceLabel = 'app.kubernetes.io/instance';
export const mountPaths = {
  recordings: '/var/lib/rtmpd/recordings',
  keyframes: '/var/lib/rtmpd/keyframes',
  config: '/etc/rtmpd',
  tmp: '/tmp',
  /** Each Secret spec.auth names is mounted whole at secrets/<name>, where the kubelet keeps it current. */
  secrets: '/etc/rtmpd-secrets',
} as const;
/** The key of rtmpd's config file in the ConfigMap, and so its name under mountPaths.config. */
export const configFileName = 'rtmpd.yaml';
/** Seconds the pod keeps serving after it is marked terminating, so Services and clients stop sending to it first. */
export const preStopSleepSeconds = 5;

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

const selectorLabels = (server: RtmpServer): Record<string, string> => ({
  'app.kubernetes.io/name': 'rtmpd',
  [instanceLabel]: server.metadata.name,
});

const labels = (server: RtmpServer): Record<string, string> => ({
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

const meta = (server: RtmpServer, name: string, owned = true): Manifest['metadata'] => ({
  name,
  namespace: server.metadata.namespace,
  labels: labels(server),
  ...(owned ? { ownerReferences: [ownerReference(server)] } : {}),
});

// ---- rtmpd configuration --------------------------------------------------------

/** The rtmpd options the pods run with: typed fields, operator-owned binds and dirs, and every set spec.rtmpd option. */
function rtmpdConfig(spec: RtmpServerSpec): Partial<Config> {
  const config: Partial<Config> = {
    rtmpBind: `0.0.0.0:${spec.ports.rtmp}`,
    httpBind: `0.0.0.0:${spec.ports.http}`,
    storageDir: mountPaths.recordings,
    keyframeDir: mountPaths.keyframes,
    logLevel: spec.logLevel,
    recordingEnabled: spec.recording.enabled,
    recordingFormat: spec.recording.format,
    recordingSegmentSeconds: spec.recording.segmentSeconds,
    recordingMaxAgeHours: spec.recording.maxAgeHours,
    recordingMaxBytes: spec.recording.maxBytes,
    recordingRules: spec.recording.rules,
    hlsEnabled: spec.hls.enabled,
    hlsLowLatency: spec.hls.lowLatency,
    hlsSegmentSeconds: spec.hls.segmentSeconds,
    hlsPartSeconds: spec.hls.partSeconds,
    hlsWindowSegments: spec.hls.windowSegments,
    hlsRules: spec.hls.rules,
    snapshotEnabled: spec.snapshot.enabled,
    snapshotIntervalSeconds: spec.snapshot.intervalSeconds,
    snapshotWidth: spec.snapshot.width,
    snapshotQuality: spec.snapshot.quality,
    snapshotKeep: spec.snapshot.keep,
  };
  Object.assign(config, authConfig(spec));
  const extra = spec.rtmpd as Partial<Record<ConfigKey, unknown>>;
  for (const key of passthroughOptions) {
    if (extra[key] !== undefined) (config as Record<string, unknown>)[key] = extra[key];
  }
  return config;
}

// ---- authorization -------------------------------------------------------------

const secretPath = (name: string, key?: string) => `${mountPaths.secrets}/${name}${key === undefined ? '' : `/${key}`}`;

/** One spec.auth rule as rtmpd's rule, its Secrets replaced by the paths they are mounted at. */
function authRule(rule: AuthRuleSpec): AuthRule {
  const base = { app: rule.app ?? '*', key: rule.key ?? '*', actions: rule.actions ?? ['publish', 'play'] };
  switch (rule.method) {
    case 'open':
      return { ...base, method: 'open' };
    case 'keys':
      return { ...base, method: 'keys', keys: secretPath(rule.keysSecret?.name ?? '') };
    case 'signed':
      return { ...base, method: 'signed', secretFile: secretPath(rule.secret?.name ?? '', rule.secret?.key) };
    case 'jwt':
      return {
        ...base,
        method: 'jwt',
        ...(rule.jwksUrl ? { jwksUrl: rule.jwksUrl } : { keyFile: secretPath(rule.keySecret?.name ?? '', rule.keySecret?.key) }),
        ...(rule.issuer ? { issuer: rule.issuer } : {}),
        ...(rule.audience ? { audience: rule.audience } : {}),
      };
    case 'callback':
      return {
        ...base,
        method: 'callback',
        ...(rule.url ? { url: rule.url } : { urlFile: secretPath(rule.urlSecret?.name ?? '', rule.urlSecret?.key) }),
        timeoutMs: rule.timeoutMs ?? 2000,
        cacheSeconds: rule.cacheSeconds ?? 10,
        failOpen: rule.failOpen ?? false,
      };
  }
}

/** rtmpd's auth options from spec.auth: paths into the mounted Secrets, never their contents. */
function authConfig(spec: RtmpServerSpec): Partial<Config> {
  const { auth } = spec;
  return {
    authRules: (auth.rules ?? []).map(authRule),
    apiTokenFile: auth.apiTokenSecret ? secretPath(auth.apiTokenSecret.name, auth.apiTokenSecret.key) : '',
    apiReadAccess: auth.apiReadAccess,
    metricsAccess: auth.metricsAccess,
  };
}

/** Every Secret spec.auth names, with the field that names it (for a clear message when one is missing). */
export function referencedSecrets(spec: RtmpServerSpec): { name: string; field: string }[] {
  const refs: { name: string; field: string }[] = [];
  (spec.auth.rules ?? []).forEach((rule, i) => {
    const at = `spec.auth.rules[${i}]`;
    if (rule.method === 'keys' && rule.keysSecret) refs.push({ name: rule.keysSecret.name, field: `${at}.keysSecret` });
    if (rule.method === 'signed' && rule.secret) refs.push({ name: rule.secret.name, field: `${at}.secret` });
    if (rule.method === 'jwt' && !rule.jwksUrl && rule.keySecret) refs.push({ name: rule.keySecret.name, field: `${at}.keySecret` });
    if (rule.method === 'callback' && !rule.url && rule.urlSecret) refs.push({ name: rule.urlSecret.name, field: `${at}.urlSecret` });
  });
  if (spec.auth.apiTokenSecret) refs.push({ name: spec.auth.apiTokenSecret.name, field: 'spec.auth.apiTokenSecret' });
  return refs;
}

/** A volume name for a Secret: DNS-1123 labels allow no dots and 63 characters, Secret names do. */
const secretVolumeName = (name: string) => `secret-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;

/** The Secret volumes of the pod, one per Secret named, in name order so the template hash is stable. */
function secretVolumes(spec: RtmpServerSpec): { volumes: object[]; mounts: object[] } {
  const names = [...new Set(referencedSecrets(spec).map((r) => r.name))].sort();
  return {
    volumes: names.map((name) => ({ name: secretVolumeName(name), secret: { secretName: name } })),
    mounts: names.map((name) => ({ name: secretVolumeName(name), mountPath: secretPath(name), readOnly: true })),
  };
}

const isOwned = (key: ConfigKey) => (operatorOwnedOptions as readonly ConfigKey[]).includes(key);
const pick = (config: Partial<Config>, keep: (key: ConfigKey) => boolean): Partial<Config> =>
  Object.fromEntries(
    (Object.keys(configSchema.shape) as ConfigKey[]).filter((k) => config[k] !== undefined && keep(k)).map((k) => [k, config[k]]),
  );

/**
 * rtmpd's arguments: the mounted config file, and the options the operator
 * owns (listen addresses and mount paths), which are the pod's, not the
 * configuration's. Named by rtmpd's own flagName(), in schema order.
 */
function rtmpdArgs(config: Partial<Config>): string[] {
  const owned = pick(config, isOwned);
  return [`--config=${mountPaths.config}/${configFileName}`, ...Object.entries(owned).map(([k, v]) => `--${flagName(k)}=${String(v)}`)];
}

/** The ConfigMap's content: every other option, in rtmpd's config-file format. */
const configFile = (config: Partial<Config>): string =>
  stringify(
    pick(config, (k) => !isOwned(k)),
    { lineWidth: 0 },
  );

/** Which options differ between the config file the pods have (the ConfigMap's text) and the desired one, by how rtmpd takes them. */
export function configChanges(current: string | undefined, config: Partial<Config>): Record<'live' | 'restart', ConfigKey[]> {
  let before: Record<string, unknown> = {};
  try {
    before = (parse(current ?? '') as Record<string, unknown> | null) ?? {};
  } catch {
    // an unreadable file counts as empty: every option is a change
  }
  const after = pick(config, (k) => !isOwned(k)) as Record<string, unknown>;
  const changed = (Object.keys(configSchema.shape) as ConfigKey[]).filter(
    (k) => !isOwned(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return { live: changed.filter((k) => reloadOf(k) === 'live'), restart: changed.filter((k) => reloadOf(k) === 'restart') };
}

/**
 * A hash of the options a running rtmpd cannot take live: the pod template
 * carries it, so changing one of those rolls the pods, while a live option
 * only changes the mounted file, which rtmpd re-reads.
 */
const restartChecksum = (config: Partial<Config>): string =>
  createHash('sha256')
    .update(JSON.stringify(pick(config, (k) => !isOwned(k) && reloadOf(k) === 'restart')))
    .digest('hex');

// ---- objects --------------------------------------------------------------------

function configMap(server: RtmpServer, config: Partial<Config>): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(server, childNames(server).configMap),
    data: { [configFileName]: configFile(config) },
  };
}

function persistentVolumeClaims(server: RtmpServer): Manifest[] {
  const { storage } = server.spec;
  const out: Manifest[] = [];
  for (const which of ['recordings', 'keyframes'] as const) {
    const volume = storage[which];
    if (volume.existingClaim) continue;
    out.push({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      // Delete: owned, so garbage collection removes the claim with the RtmpServer.
      // Retain: not owned, so it outlives the RtmpServer (no finalizer needed).
      metadata: {
        ...meta(server, childNames(server)[which], storage.reclaimPolicy === 'Delete'),
        labels: { ...labels(server), 'media.fluxiot.io/volume': which },
      },
      spec: {
        accessModes: volume.accessModes,
        resources: { requests: { storage: volume.size } },
        ...(volume.storageClassName !== undefined ? { storageClassName: volume.storageClassName } : {}),
        volumeMode: 'Filesystem',
      },
    });
  }
  return out;
}

function service(server: RtmpServer): Manifest {
  const { service: svc, ports } = server.spec;
  const withNodePorts = svc.type !== 'ClusterIP';
  const port = (name: 'rtmp' | 'http') => ({
    name,
    protocol: 'TCP',
    port: ports[name],
    targetPort: name,
    ...(withNodePorts && svc.nodePorts?.[name] !== undefined ? { nodePort: svc.nodePorts[name] } : {}),
  });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta(server, childNames(server).service), ...(svc.annotations ? { annotations: svc.annotations } : {}) },
    spec: {
      type: svc.type,
      selector: selectorLabels(server),
      ports: [port('rtmp'), port('http')],
      ...(svc.type === 'LoadBalancer' && svc.loadBalancerSourceRanges ? { loadBalancerSourceRanges: svc.loadBalancerSourceRanges } : {}),
    },
  };
}

const sharedVolume = (v: RtmpServerSpec['storage']['recordings']) =>
  v.existingClaim !== undefined || v.accessModes.includes('ReadWriteMany');

/** The restricted Pod Security level's settings (the node image's user is `node`, UID 1000). */
export const restrictedPodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  fsGroup: 1000,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
} as const;
export const restrictedSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/**
 * Probe timings for a media server: a busy event loop (hundreds of streams,
 * a burst of snapshot decodes) may answer /health late for a few seconds, so
 * liveness gives it half a minute before a restart cuts every live stream;
 * readiness reacts within seconds; startup covers a slow first start.
 */
export const defaultProbes = {
  startup: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 },
  liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
  readiness: { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
} as const;

export interface Defaults {
  /** The rtmpd image when spec.image is unset. */
  image: string;
}

/** The rtmpd pod. */
function podTemplate(server: RtmpServer, config: Partial<Config>, defaults: Defaults): object {
  const { spec } = server;
  const names = childNames(server);
  const shutdownGrace = config.shutdownGraceSeconds ?? configDefault('shutdownGraceSeconds');
  const env: object[] = [];
  if (spec.otel.endpoint) {
    env.push(
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: spec.otel.endpoint },
      { name: 'OTEL_SERVICE_NAME', value: spec.otel.serviceName },
      {
        name: 'OTEL_RESOURCE_ATTRIBUTES',
        value: `k8s.namespace.name=${server.metadata.namespace},k8s.deployment.name=${names.workload},k8s.pod.name=$(POD_NAME)`,
      },
    );
  }
  const secrets = secretVolumes(spec);
  const probe = (kind: keyof typeof defaultProbes) => ({
    httpGet: { path: '/health', port: 'http' },
    ...defaultProbes[kind],
    ...spec.probes?.[kind],
  });
  // Replicas spread over nodes unless the user placed them otherwise. Also
  // with one replica, so that scaling does not change the template (and roll the pod).
  const spread =
    spec.topologySpreadConstraints?.map((c) => ({ labelSelector: { matchLabels: selectorLabels(server) }, ...c })) ??
    (!spec.affinity
      ? [
          {
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: selectorLabels(server) },
          },
        ]
      : undefined);
  return {
    metadata: {
      labels: labels(server),
      annotations: {
        ...spec.podAnnotations,
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(spec.ports.http),
        'prometheus.io/path': '/metrics',
        [checksumAnnotation]: restartChecksum(config),
      },
    },
    spec: {
      // The preStop pause, rtmpd's own drain, and a margin for its final flush.
      terminationGracePeriodSeconds: preStopSleepSeconds + shutdownGrace + 5,
      securityContext: { ...restrictedPodSecurityContext, ...spec.podSecurityContext },
      ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      ...(spec.affinity ? { affinity: spec.affinity } : {}),
      ...(spread?.length ? { topologySpreadConstraints: spread } : {}),
      containers: [
        {
          name: 'rtmpd',
          image: spec.image ?? defaults.image,
          imagePullPolicy: spec.imagePullPolicy,
          args: rtmpdArgs(config),
          ports: [
            { name: 'rtmp', containerPort: spec.ports.rtmp, protocol: 'TCP' },
            { name: 'http', containerPort: spec.ports.http, protocol: 'TCP' },
          ],
          ...(env.length ? { env } : {}),
          startupProbe: probe('startup'),
          livenessProbe: probe('liveness'),
          readinessProbe: probe('readiness'),
          lifecycle: { preStop: { sleep: { seconds: preStopSleepSeconds } } },
          resources: spec.resources ?? defaultResources,
          securityContext: { ...restrictedSecurityContext, ...spec.securityContext },
          volumeMounts: [
            { name: 'config', mountPath: mountPaths.config, readOnly: true },
            { name: 'recordings', mountPath: mountPaths.recordings },
            { name: 'keyframes', mountPath: mountPaths.keyframes },
            { name: 'tmp', mountPath: mountPaths.tmp },
            ...secrets.mounts,
          ],
        },
      ],
      volumes: [
        { name: 'config', configMap: { name: names.configMap } },
        { name: 'recordings', persistentVolumeClaim: { claimName: names.recordings } },
        { name: 'keyframes', persistentVolumeClaim: { claimName: names.keyframes } },
        // The root filesystem is read-only; scratch space for Node and ffmpeg.
        { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
        ...secrets.volumes,
      ],
    },
  };
}

/** Limits voluntary disruptions (node drains) while more than one pod serves. */
function podDisruptionBudget(server: RtmpServer): Manifest | undefined {
  const { replicas, podDisruptionBudget: pdb } = server.spec;
  if (replicas <= 1 || !pdb.enabled) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(server, childNames(server).podDisruptionBudget),
    spec: { maxUnavailable: pdb.maxUnavailable, selector: { matchLabels: selectorLabels(server) } },
  };
}

/** A hash of what the pods run: when it changes, the workload replaces its pods. */
const templateHash = (template: object): string => createHash('sha256').update(JSON.stringify(template)).digest('hex');

function deployment(server: RtmpServer, config: Partial<Config>, defaults: Defaults): Manifest {
  const { spec } = server;
  const template = podTemplate(server, config, defaults);
  // Two pods may only share the volumes when they are ReadWriteMany; with
  // ReadWriteOnce the old pod goes before the new one starts.
  const rolling = sharedVolume(spec.storage.recordings) && sharedVolume(spec.storage.keyframes);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { ...meta(server, childNames(server).workload), annotations: { [templateHashAnnotation]: templateHash(template) } },
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: selectorLabels(server) },
      strategy: rolling ? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } : { type: 'Recreate' },
      template,
    },
  };
}

function serviceMonitor(server: RtmpServer): Manifest {
  const sm = server.spec.metrics.serviceMonitor;
  const { metricsAccess, apiTokenSecret } = server.spec.auth;
  // Token-protected /metrics: Prometheus sends the API token, which the Prometheus Operator reads from the Secret.
  const authorization =
    metricsAccess === 'token' && apiTokenSecret ? { authorization: { type: 'Bearer', credentials: { ...apiTokenSecret } } } : {};
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { ...meta(server, childNames(server).serviceMonitor), labels: { ...labels(server), ...sm.labels } },
    spec: {
      selector: { matchLabels: selectorLabels(server) },
      namespaceSelector: { matchNames: [server.metadata.namespace] },
      // The dashboard and alerts filter by RtmpServer through this label.
      podTargetLabels: ['app.kubernetes.io/instance'],
      endpoints: [{ port: 'http', path: '/metrics', interval: sm.interval, ...authorization }],
    },
  };
}

export interface DesiredState {
  config: Partial<Config>;
  configMap: Manifest;
  persistentVolumeClaims: Manifest[];
  service: Manifest;
  deployment: Manifest;
  podDisruptionBudget?: Manifest;
  serviceMonitor?: Manifest;
}

/** Everything the RtmpServer should own, in apply order. */
export function desiredState(server: RtmpServer, defaults: Defaults): DesiredState {
  const config = rtmpdConfig(server.spec);
  const pdb = podDisruptionBudget(server);
  return {
    config,
    configMap: configMap(server, config),
    persistentVolumeClaims: persistentVolumeClaims(server),
    service: service(server),
    deployment: deployment(server, config, defaults),
    ...(pdb ? { podDisruptionBudget: pdb } : {}),
    ...(server.spec.metrics.serviceMonitor.enabled ? { serviceMonitor: serviceMonitor(server) } : {}),
  };
}

/** In-cluster URLs for status.endpoints. */
export function endpoints(server: RtmpServer): NonNullable<RtmpServerStatus['endpoints']> {
  const host = `${childNames(server).service}.${server.metadata.namespace}.svc`;
  const { rtmp, http } = server.spec.ports;
  return {
    rtmp: `rtmp://${host}:${rtmp}/${rtmpApp}`,
    httpFlv: `http://${host}:${http}/${rtmpApp}`,
    api: `http://${host}:${http}/api/v1`,
  };
}

/** The label selector of the pods, as the scale subresource reports it. */
export const selectorString = (server: RtmpServer): string =>
  Object.entries(selectorLabels(server))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
