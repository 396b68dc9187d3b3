// The names of the objects an RtmpServer owns, in one place for the builders,
// the reconcile and the status.
import type { RtmpServer } from '../api/rtmpserver.ts';

export interface ChildNames {
  /** The StatefulSet. */
  workload: string;
  /** The Service clients use. */
  service: string;
  /** The headless Service that gives each pod a DNS name (<pod>.<headless>.<namespace>.svc). */
  headlessService: string;
  configMap: string;
  serviceMonitor: string;
  podDisruptionBudget: string;
  horizontalPodAutoscaler: string;
  /**
   * A shared volume's claim: the user's existingClaim, or the ReadWriteMany
   * claim the operator makes (also the name of the single claim operator
   * 0.1.0 made per volume).
   */
  recordings: string;
  keyframes: string;
  /** The claim a StatefulSet pod gets for a per-pod volume. */
  perPodClaim: (volume: 'recordings' | 'keyframes', ordinal: number) => string;
  /** The Job that copies 0.1.0's claims into the first pod's claims. */
  migrationJob: string;
  /** The pods' ServiceAccount, and the Role and RoleBinding that let them keep the fleet's Leases. */
  podAccount: string;
  /** The Secret with the token the pods present to each other. */
  fleetTokenSecret: string;
}

export const childNames = (server: RtmpServer): ChildNames => {
  const { name } = server.metadata;
  const { recordings, keyframes } = server.spec.storage;
  return {
    workload: name,
    service: name,
    headlessService: `${name}-pods`,
    configMap: `${name}-rtmpd`,
    serviceMonitor: name,
    podDisruptionBudget: name,
    horizontalPodAutoscaler: name,
    recordings: recordings.existingClaim ?? `${name}-recordings`,
    keyframes: keyframes.existingClaim ?? `${name}-keyframes`,
    perPodClaim: (volume, ordinal) => `${volume}-${name}-${ordinal}`,
    migrationJob: `${name}-migrate`,
    podAccount: `${name}-rtmpd`,
    fleetTokenSecret: `${name}-fleet-token`,
  };
};

/** The server whose per-pod claim (ChildNames.perPodClaim) a claim's name can be, if it has that shape. */
export const perPodClaimServer = (claim: string): string | undefined => /^(?:recordings|keyframes)-(.+)-\d+$/.exec(claim)?.[1];
