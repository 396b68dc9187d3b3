// Pure builders: the objects an RtmpServer should own, computed from the
// resource and what the operator observed of its StatefulSet. No I/O here, so
// every field is unit-tested without a cluster.
import { createHash } from 'node:crypto';
import type { Config } from '@flux-rtmpd/rtmpd/config';
import { apiVersion, kind, rtmpApp, type RtmpServer, type RtmpServerStatus } from '../api/rtmpserver.ts';
import { fleetOptions, podAccess } from './fleet.ts';
import { labels, meta, selectorLabels, type Manifest } from './manifest.ts';
import { childNames } from './names.ts';
import { containerPorts, podTemplate, type Defaults } from './pod.ts';
import { configFile, configFileName, rtmpdConfig } from './rtmpd-config.ts';
import { claimTemplates, sharedClaims, type VolumeName } from './storage.ts';

/** On the workload: templateHash() of the pod template the operator last applied. */
export const templateHashAnnotation = 'media.fluxiot.io/pod-template-hash';

function configMap(server: RtmpServer, config: Partial<Config>): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(server, childNames(server).configMap),
    data: { [configFileName]: configFile(config) },
  };
}

function service(server: RtmpServer): Manifest {
  const { service: svc } = server.spec;
  const withNodePorts = svc.type !== 'ClusterIP';
  const nodePorts: Partial<Record<string, number>> = svc.nodePorts ?? {};
  const ports = containerPorts(server.spec).map(({ name, port }) => ({
    name,
    protocol: 'TCP',
    port,
    targetPort: name,
    ...(withNodePorts && nodePorts[name] !== undefined ? { nodePort: nodePorts[name] } : {}),
  }));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta(server, childNames(server).service), ...(svc.annotations ? { annotations: svc.annotations } : {}) },
    spec: {
      type: svc.type,
      selector: selectorLabels(server),
      ports,
      ...(svc.type === 'LoadBalancer' && svc.loadBalancerSourceRanges ? { loadBalancerSourceRanges: svc.loadBalancerSourceRanges } : {}),
      ...(withNodePorts && svc.externalTrafficPolicy ? { externalTrafficPolicy: svc.externalTrafficPolicy } : {}),
    },
  };
}

/** Gives each pod a stable DNS name, <pod>.<name>-pods.<namespace>.svc, for whoever needs to reach one pod. */
function headlessService(server: RtmpServer): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(server, childNames(server).headlessService),
    spec: {
      clusterIP: 'None',
      selector: selectorLabels(server),
      ports: containerPorts(server.spec).map(({ name, port }) => ({ name, protocol: 'TCP', port, targetPort: name })),
    },
  };
}

/** A hash of what the pods run: when it changes, the workload replaces its pods. */
const templateHash = (template: object): string => createHash('sha256').update(JSON.stringify(template)).digest('hex');

/** What the reconcile saw of the existing StatefulSet that the builders must respect. */
export interface Observed {
  /** The storage sizes in its volumeClaimTemplates, which a StatefulSet cannot change. */
  claimTemplateSizes?: Partial<Record<VolumeName, string>>;
}

/**
 * Stable pod names (<name>-0, -1, ...) as identities, a claim of its own per
 * pod for per-pod volumes, pods started and stopped in parallel (they are
 * independent servers), replaced one at a time on a change.
 */
function statefulSet(server: RtmpServer, config: Partial<Config>, defaults: Defaults, observed: Observed): Manifest {
  const { spec } = server;
  const template = podTemplate(server, config, defaults);
  const names = childNames(server);
  const claimRetention = spec.storage.reclaimPolicy === 'Delete' ? 'Delete' : 'Retain';
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { ...meta(server, names.workload), annotations: { [templateHashAnnotation]: templateHash(template) } },
    spec: {
      replicas: spec.replicas,
      serviceName: names.headlessService,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selectorLabels(server) },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      // Claims of pods removed by a scale-down stay, with their recordings, for when the pod comes back.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: claimRetention, whenScaled: 'Retain' },
      template,
      volumeClaimTemplates: claimTemplates(server, observed.claimTemplateSizes ?? {}),
    },
  };
}

/**
 * Limits voluntary disruptions (node drains). maxUnavailable holds at any
 * replica count (at one replica it lets a drain take the pod, as no budget
 * would), so the budget does not follow spec.replicas: the autoscaler's
 * scaling never creates or deletes it.
 */
function podDisruptionBudget(server: RtmpServer): Manifest | undefined {
  const pdb = server.spec.podDisruptionBudget;
  if (!pdb.enabled) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(server, childNames(server).podDisruptionBudget),
    spec: { maxUnavailable: pdb.maxUnavailable, selector: { matchLabels: selectorLabels(server) } },
  };
}

/**
 * The per-pod metric the autoscaler reads through the custom metrics API: rtmpd's
 * gauge of live publishers, as prometheus-adapter serves it with the chart's rule
 * (charts/rtmpd-operator/files/prometheus-adapter/rules.yaml).
 */
export const publishersMetric = 'rtmpd_publishers';

/**
 * Scales the RtmpServer itself (its scale subresource), not the StatefulSet: the
 * autoscaler writes spec.replicas and the operator carries it to the pods, so
 * the two never fight over the StatefulSet.
 */
function horizontalPodAutoscaler(server: RtmpServer): Manifest | undefined {
  const autoscaling = server.spec.autoscaling;
  if (!autoscaling) return undefined;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(server, childNames(server).horizontalPodAutoscaler),
    spec: {
      scaleTargetRef: { apiVersion, kind, name: server.metadata.name },
      minReplicas: autoscaling.minReplicas,
      maxReplicas: autoscaling.maxReplicas,
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: publishersMetric },
            target: { type: 'AverageValue', averageValue: String(autoscaling.targetPublishersPerPod) },
          },
        },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: autoscaling.scaleDownStabilizationSeconds } },
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
  /** The pods' ServiceAccount, Role and RoleBinding, in apply order. */
  podAccess: Manifest[];
  configMap: Manifest;
  /** The shared claims the operator makes; per-pod claims come from the StatefulSet. */
  persistentVolumeClaims: Manifest[];
  service: Manifest;
  headlessService: Manifest;
  statefulSet: Manifest;
  podDisruptionBudget?: Manifest;
  horizontalPodAutoscaler?: Manifest;
  serviceMonitor?: Manifest;
}

/** Everything the RtmpServer should own, in apply order. */
export function desiredState(server: RtmpServer, defaults: Defaults, observed: Observed = {}): DesiredState {
  const config = { ...rtmpdConfig(server.spec), ...fleetOptions(server) };
  const pdb = podDisruptionBudget(server);
  const hpa = horizontalPodAutoscaler(server);
  return {
    config,
    podAccess: podAccess(server),
    configMap: configMap(server, config),
    persistentVolumeClaims: sharedClaims(server),
    service: service(server),
    headlessService: headlessService(server),
    statefulSet: statefulSet(server, config, defaults, observed),
    ...(pdb ? { podDisruptionBudget: pdb } : {}),
    ...(hpa ? { horizontalPodAutoscaler: hpa } : {}),
    ...(server.spec.metrics.serviceMonitor.enabled ? { serviceMonitor: serviceMonitor(server) } : {}),
  };
}

/** In-cluster URLs for status.endpoints. */
export function endpoints(server: RtmpServer): NonNullable<RtmpServerStatus['endpoints']> {
  const host = `${childNames(server).service}.${server.metadata.namespace}.svc`;
  const { rtmp, http } = server.spec.ports;
  const { tls } = server.spec;
  return {
    rtmp: `rtmp://${host}:${rtmp}/${rtmpApp}`,
    ...(tls ? { rtmps: `rtmps://${host}:${tls.rtmpsPort}/${rtmpApp}` } : {}),
    httpFlv: `http://${host}:${http}/${rtmpApp}`,
    api: `http://${host}:${http}/api/v1`,
  };
}
