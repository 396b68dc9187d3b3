// What makes an RtmpServer's pods one fleet (rtmpd/src/fleet/): the options
// that turn fleet mode on, a ServiceAccount whose Role allows exactly the
// fleet's Leases, and the Secret with the token the pods present to each
// other. Pure builders; the reconcile applies them. Every RtmpServer runs as a
// fleet, also with one replica, so that scaling never changes the pod template.
import { randomBytes } from 'node:crypto';
import type { Config } from '@flux-rtmpd/rtmpd/config';
import type { RtmpServer } from '../api/rtmpserver.ts';
import { rtmpdPodRules } from '../rbac.ts';
import { meta, type Manifest } from './manifest.ts';
import { childNames } from './names.ts';
import { secretPath } from './rtmpd-config.ts';

/** The key of the fleet token in its Secret. */
const fleetTokenKey = 'token';

/** The fleet options of the config: the fleet is the RtmpServer; the token is a file of the mounted Secret. */
export const fleetOptions = (server: RtmpServer): Partial<Config> => ({
  fleetName: server.metadata.name,
  fleetTokenFile: secretPath(childNames(server).fleetTokenSecret, fleetTokenKey),
});

/** Who the pod is in its fleet, from the downward API (rtmpd's RTMPD_FLEET_* variables). */
export const fleetEnv: object[] = [
  { name: 'RTMPD_FLEET_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  // The pod's Lease names the Pod as its owner, so it goes with the Pod (scale-down, a deleted RtmpServer).
  { name: 'RTMPD_FLEET_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
  { name: 'RTMPD_FLEET_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: 'RTMPD_FLEET_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
];

/** The pods' identity towards the API server. Its token is mounted only into the rtmpd pods, which ask for it. */
function serviceAccount(server: RtmpServer): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(server, childNames(server).podAccount),
    automountServiceAccountToken: false,
  };
}

function role(server: RtmpServer): Manifest {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(server, childNames(server).podAccount),
    rules: rtmpdPodRules,
  };
}

function roleBinding(server: RtmpServer): Manifest {
  const name = childNames(server).podAccount;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(server, name),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace: server.metadata.namespace }],
  };
}

/** ServiceAccount, Role and RoleBinding, in apply order (the binding names both). */
export const podAccess = (server: RtmpServer): Manifest[] => [serviceAccount(server), role(server), roleBinding(server)];

/** A fresh random fleet token. */
export const newFleetToken = (): string => randomBytes(32).toString('base64url');

/**
 * The token's Secret, created once and never applied again: the operator
 * never reads it back and never replaces it, so the token changes only when a
 * user edits or deletes the Secret (running pods keep the token they started
 * with; rtmpd reads it at start).
 */
export function fleetTokenSecret(server: RtmpServer, token: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(server, childNames(server).fleetTokenSecret),
    type: 'Opaque',
    stringData: { [fleetTokenKey]: token },
  };
}
