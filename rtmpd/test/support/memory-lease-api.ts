import type { Lease, LeaseApi } from '../../src/fleet/lease-api.ts';

/**
 * Leases in memory, with the API server's compare-and-swap on
 * resourceVersion; counts its calls. Its watch never reports: it stands for
 * an API server that has fallen behind, or one a test drives by hand.
 */
export function memoryLeaseApi(): LeaseApi & { calls: number } {
  const leases = new Map<string, Lease>();
  let version = 0;
  const store = (lease: Lease): Lease => {
    const stored = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++version) } };
    leases.set(lease.metadata.name, stored);
    return stored;
  };
  const api = {
    calls: 0,
    async create(lease: Lease) {
      api.calls++;
      return leases.has(lease.metadata.name) ? undefined : store(lease);
    },
    async get(name: string) {
      api.calls++;
      return leases.get(name);
    },
    async replace(lease: Lease) {
      api.calls++;
      return leases.get(lease.metadata.name)?.metadata.resourceVersion === lease.metadata.resourceVersion ? store(lease) : undefined;
    },
    async delete(name: string, resourceVersion?: string) {
      api.calls++;
      if (resourceVersion !== undefined && leases.get(name)?.metadata.resourceVersion !== resourceVersion) return false;
      return leases.delete(name);
    },
    async list() {
      api.calls++;
      return { items: [...leases.values()], resourceVersion: String(version) };
    },
    async watch() {
      return () => undefined;
    },
  };
  return api;
}
