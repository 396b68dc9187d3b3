// The names of the objects an RtmpServer owns, in one place for the builders,
// the reconcile and the status.
import type { RtmpServer } from '../api/rtmpserver.ts';

export interface ChildNames {
  workload: string;
  service: string;
  configMap: string;
  serviceMonitor: string;
  podDisruptionBudget: string;
  /** Claim names: the user's existingClaim, or the one the operator creates. */
  recordings: string;
  keyframes: string;
}

export const childNames = (server: RtmpServer): ChildNames => {
  const { name } = server.metadata;
  const { recordings, keyframes } = server.spec.storage;
  return {
    workload: name,
    service: name,
    configMap: `${name}-rtmpd`,
    serviceMonitor: name,
    podDisruptionBudget: name,
    recordings: recordings.existingClaim ?? `${name}-recordings`,
    keyframes: keyframes.existingClaim ?? `${name}-keyframes`,
  };
};
