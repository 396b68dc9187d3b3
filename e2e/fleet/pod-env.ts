// The environment of an rtmpd standing in for a fleet pod outside Kubernetes
// (the e2e's local pods, make bench's +fleet scenarios): what the operator
// gives a fleet's pods (operator/src/controller/fleet.ts), with the Leases'
// cluster as a kubeconfig instead of the pod's ServiceAccount.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Who the pod is in its fleet, and the cluster that holds the fleet's Leases. */
export interface FleetPodIdentity {
  fleet: string;
  namespace: string;
  pod: string;
  /** Its own loopback address (127.0.0.2, .3, ...), as the pod IP. */
  ip: string;
  token: string;
  kubeconfig: string;
  leaseSeconds?: number;
}

/**
 * The downward API's name, namespace and IP, and the token as a file of the
 * mounted Secret: written into `dir` here, as `fleet-token`.
 */
export async function fleetPodEnv(pod: FleetPodIdentity, dir: string): Promise<Record<string, string>> {
  const tokenFile = join(dir, 'fleet-token');
  await writeFile(tokenFile, `${pod.token}\n`, { mode: 0o600 });
  return {
    KUBECONFIG: pod.kubeconfig,
    RTMPD_FLEET_NAME: pod.fleet,
    RTMPD_FLEET_POD_NAME: pod.pod,
    RTMPD_FLEET_NAMESPACE: pod.namespace,
    RTMPD_FLEET_POD_IP: pod.ip,
    RTMPD_FLEET_TOKEN_FILE: tokenFile,
    ...(pod.leaseSeconds ? { RTMPD_FLEET_LEASE_SECONDS: String(pod.leaseSeconds) } : {}),
  };
}
