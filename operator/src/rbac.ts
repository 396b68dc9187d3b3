// Least-privilege RBAC of the operator, kept next to the code that needs it.
// `make generate` writes it into the chart (files/rbac/role.yaml), whose templates read it.
// Server-side apply needs create+patch (it creates missing objects); the
// informers need list+watch; Secrets are created (the fleet token's) and read
// (those an RtmpServer names, to check them), only in the namespaces the
// operator watches; nothing is ever updated or deleted
// except PodDisruptionBudgets, HorizontalPodAutoscalers and ServiceMonitors
// (removed when no longer wanted), operator 0.1.0's Deployments (replaced by
// StatefulSets) and the leader Lease. The operator holds the rtmpd pods' Lease
// rules because the API server lets it grant only what it holds itself; it
// only watches Leases.
import { stringify } from 'yaml';
import { group, plural } from './api/rtmpserver.ts';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const clusterRoleName = 'rtmpd-operator';
const leaderElectionRoleName = 'rtmpd-operator-leader-election';
const metricsAuthRoleName = 'rtmpd-operator-metrics-auth';
const metricsReaderRoleName = 'rtmpd-operator-metrics-reader';

/**
 * What an rtmpd pod of a fleet needs, in its own namespace only: its pod Lease
 * and the stream claims (rtmpd/src/fleet/). The operator gives each
 * RtmpServer's pods a Role with these rules, so it must hold them itself.
 */
export const rtmpdPodRules: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
];

/** What the operator needs in every namespace it watches. */
export const managerRules: PolicyRule[] = [
  { apiGroups: [group], resources: [plural], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [group], resources: [`${plural}/status`], verbs: ['get', 'patch', 'update'] },
  // Owner references with blockOwnerDeletion need update on the owner's finalizers.
  { apiGroups: [group], resources: [`${plural}/finalizers`], verbs: ['update'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  // operator 0.1.0's Deployments, removed by the migration to a StatefulSet
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'delete'] },
  { apiGroups: [''], resources: ['services', 'configmaps', 'persistentvolumeclaims'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  // pods are read for the status (why they do not come up); the Job copies 0.1.0's claims
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  // watch: the Warnings the status's causes read (controller/causes.ts eventSelectors); create, patch: our own
  { apiGroups: [''], resources: ['events'], verbs: ['list', 'watch', 'create', 'patch'] },
  // create: the fleet token's Secret; get, list, watch: the Secrets an
  // RtmpServer names, checked as rtmpd reads them and watched so a change
  // reconciles it (controller/secrets.ts; the watch caches no data). Bound
  // per watched namespace with watchNamespaces. Mounting Secrets needs no
  // permission of the operator's: the kubelet does it.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create'] },
  { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  // the rtmpd pods' ServiceAccount, and the Role and RoleBinding that give it rtmpdPodRules
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  // rtmpdPodRules, held to be granted; the status's counts come from watching the fleet's Leases
  ...rtmpdPodRules,
];

/** What leader election needs, in the operator's own namespace only. */
export const leaderElectionRules: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
];

/**
 * With --metrics-auth=kubernetes: reviewing a scraper's token and asking
 * whether it may read /metrics. Both reviews are cluster-scoped.
 */
export const metricsAuthRules: PolicyRule[] = [
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
];

/** What a scraper (Prometheus) must be allowed, with --metrics-auth=kubernetes. */
export const metricsReaderRules = [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }];

const labels = { 'app.kubernetes.io/name': 'rtmpd-operator', 'app.kubernetes.io/part-of': 'flux-rtmpd' };

export function clusterRole(): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: clusterRoleName, labels },
    rules: managerRules,
  };
}

export function leaderElectionRole(): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: leaderElectionRoleName, labels },
    rules: leaderElectionRules,
  };
}

export function metricsAuthRole(): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: metricsAuthRoleName, labels },
    rules: metricsAuthRules,
  };
}

export function metricsReaderRole(): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: metricsReaderRoleName, labels },
    rules: metricsReaderRules,
  };
}

const rbacHeader = '# Generated from operator/src/rbac.ts by `make generate`; do not edit.\n';

/** The chart's files/rbac/role.yaml: the operator's roles and the metrics readers' (bindings are the chart's). */
export function rbacYaml(): string {
  return (
    rbacHeader +
    [clusterRole(), leaderElectionRole(), metricsAuthRole(), metricsReaderRole()].map((o) => stringify(o, { lineWidth: 0 })).join('---\n')
  );
}
