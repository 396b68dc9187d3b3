// The rtmpd pod: its container, probes, security context, scheduling and
// volumes, from the spec and the operator's defaults.
import { createHash } from 'node:crypto';
import { configDefault, type Config } from '@flux-rtmpd/rtmpd/config';
import { defaultResources, type RtmpServer, type RtmpServerSpec } from '../api/rtmpserver.ts';
import { fleetEnv } from './fleet.ts';
import { labels, selectorLabels } from './manifest.ts';
import { childNames } from './names.ts';
import { livenessPort, mountPaths, referencedSecrets, restartChecksum, rtmpdArgs, secretPath } from './rtmpd-config.ts';
import { storageVolumes } from './storage.ts';

/** On the pod template: restartChecksum() of the config file, so only a change rtmpd cannot take live rolls the pods. */
export const checksumAnnotation = 'media.fluxiot.io/config-checksum';
/** Seconds the pod keeps serving after it is marked terminating, so Services and clients stop sending to it first. */
export const preStopSleepSeconds = 5;

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
 * Probe timings for a media server. Liveness asks the health port (unless
 * spec.probes.liveness.port is http), which answers off the main event loop:
 * a loop busy for seconds (a join storm, a burst of snapshot decodes) is
 * alive, one stuck past rtmpd's --health-max-heartbeat-age-seconds (30) is
 * not, and three failures 10 s apart restart it. Readiness and startup ask the HTTP port, in the main loop:
 * a saturated pod may stop taking new clients for a moment, and startup
 * passes once the port that serves clients answers.
 */
export const defaultProbes = {
  startup: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 },
  liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
  readiness: { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
} as const;

export interface Defaults {
  /** The rtmpd image when spec.image is unset. */
  image: string;
  /** The rtmpd image when spec.image is unset and spec.transcode has rules: its ffmpeg transcodes. */
  transcodeImage: string;
}

/** The image the pods run: the spec's, else the default whose ffmpeg can do what the spec asks. */
export function rtmpdImage(spec: Pick<RtmpServerSpec, 'image' | 'transcode'>, defaults: Defaults): string {
  if (spec.image !== undefined) return spec.image;
  return spec.transcode.rules.length > 0 ? defaults.transcodeImage : defaults.image;
}

/** A volume name for a Secret: DNS-1123 labels allow no dots and 63 characters, Secret names do. */
const secretVolumeName = (name: string) => `secret-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;

/** The Secret volumes of the pod: each Secret spec.auth names and the fleet token's, in name order so the template hash is stable. */
function secretVolumes(server: RtmpServer): { volumes: object[]; mounts: object[] } {
  const named = referencedSecrets(server.spec).map((r) => r.name);
  const names = [...new Set([...named, childNames(server).fleetTokenSecret])].sort();
  return {
    volumes: names.map((name) => ({ name: secretVolumeName(name), secret: { secretName: name } })),
    mounts: names.map((name) => ({ name: secretVolumeName(name), mountPath: secretPath(name), readOnly: true })),
  };
}

/** The ports the Services expose: RTMP and HTTP, and RTMPS and HTTPS when spec.tls asks. */
export function containerPorts(spec: RtmpServerSpec): { name: 'rtmp' | 'http' | 'rtmps' | 'https'; port: number }[] {
  return [
    { name: 'rtmp', port: spec.ports.rtmp },
    { name: 'http', port: spec.ports.http },
    ...(spec.tls ? [{ name: 'rtmps' as const, port: spec.tls.rtmpsPort }] : []),
    ...(spec.tls?.https ? [{ name: 'https' as const, port: spec.tls.httpsPort }] : []),
  ];
}

/** The ports rtmpd listens on in the pod: the Services', and the liveness port only the kubelet asks, when it asks that one. */
const podPorts = (spec: RtmpServerSpec) => [
  ...containerPorts(spec),
  ...(livenessPort(spec) === 'health' ? [{ name: 'health', port: spec.ports.health }] : []),
];

/**
 * rtmpd runs as a user without privileges; a port below 1024 (RTMPS on 443)
 * is opened to it through the pod's network namespace sysctl, one of
 * Kubernetes' safe sysctls (allowed under the restricted Pod Security Standard).
 */
function lowPorts(spec: RtmpServerSpec): { sysctls?: { name: string; value: string }[] } {
  const lowest = Math.min(...podPorts(spec).map((p) => p.port));
  return lowest < 1024 ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: String(lowest) }] } : {};
}

/** The rtmpd pod. */
export function podTemplate(server: RtmpServer, config: Partial<Config>, defaults: Defaults): object {
  const { spec } = server;
  const names = childNames(server);
  const storage = storageVolumes(server);
  const secrets = secretVolumes(server);
  const shutdownGrace = config.shutdownGraceSeconds ?? configDefault('shutdownGraceSeconds');
  // The pod's identity, for logs and traces, and for its fleet.
  const env: object[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ...fleetEnv,
  ];
  if (spec.otel.endpoint) {
    env.push(
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: spec.otel.endpoint },
      { name: 'OTEL_SERVICE_NAME', value: spec.otel.serviceName },
      {
        name: 'OTEL_RESOURCE_ATTRIBUTES',
        value: `k8s.namespace.name=$(POD_NAMESPACE),k8s.statefulset.name=${names.workload},k8s.pod.name=$(POD_NAME)`,
      },
    );
  }
  // /ready answers 503 once rtmpd drains (SIGTERM); /health only says the process works (see defaultProbes).
  const { port: _livenessPort, ...livenessTimings } = spec.probes?.liveness ?? {};
  const probes = {
    startupProbe: { httpGet: { path: '/health', port: 'http' }, ...defaultProbes.startup, ...spec.probes?.startup },
    livenessProbe: { httpGet: { path: '/health', port: livenessPort(spec) }, ...defaultProbes.liveness, ...livenessTimings },
    readinessProbe: { httpGet: { path: '/ready', port: 'http' }, ...defaultProbes.readiness, ...spec.probes?.readiness },
  };
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
      // rtmpd keeps the fleet's Leases in the API server: the one pod that gets the account's token.
      serviceAccountName: names.podAccount,
      automountServiceAccountToken: true,
      securityContext: { ...restrictedPodSecurityContext, ...lowPorts(spec), ...spec.podSecurityContext },
      ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      ...(spec.affinity ? { affinity: spec.affinity } : {}),
      ...(spread?.length ? { topologySpreadConstraints: spread } : {}),
      containers: [
        {
          name: 'rtmpd',
          image: rtmpdImage(spec, defaults),
          imagePullPolicy: spec.imagePullPolicy,
          args: rtmpdArgs(config),
          ports: podPorts(spec).map(({ name, port }) => ({ name, containerPort: port, protocol: 'TCP' })),
          env,
          ...probes,
          lifecycle: { preStop: { sleep: { seconds: preStopSleepSeconds } } },
          // rtmpd writes the cause of a fatal exit (a bad flag, a Secret key it cannot read) to the termination
          // message file, which the status's CrashLoopBackOff cause quotes; a process that could not write it
          // (killed, out of memory) leaves the log's tail there instead.
          terminationMessagePolicy: 'FallbackToLogsOnError',
          resources: spec.resources ?? defaultResources,
          securityContext: { ...restrictedSecurityContext, ...spec.securityContext },
          volumeMounts: [
            { name: 'config', mountPath: mountPaths.config, readOnly: true },
            ...storage.mounts,
            { name: 'tmp', mountPath: mountPaths.tmp },
            ...secrets.mounts,
          ],
        },
      ],
      volumes: [
        { name: 'config', configMap: { name: names.configMap } },
        ...storage.volumes,
        // The root filesystem is read-only; scratch space for Node and ffmpeg.
        { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
        ...secrets.volumes,
      ],
    },
  };
}
