import type { Lease, LeaseApi, LeaseEvent } from '../../src/fleet/lease-api.ts';

/**
 * Leases in memory, with the API server's compare-and-swap on
 * resourceVersion; counts its calls. By default its watch never reports: it
 * stands for an API server that has fallen behind, or one a test drives by
 * hand. With `live`, every watch hears each write as it is made.
 */
export function memoryLeaseApi(o: { live?: boolean } = {}): LeaseApi & { calls: number } {
  const leases = new Map<string, Lease>();
  const watchers = new Set<(type: LeaseEvent, lease: Lease) => void>();
  let version = 0;
  const report = (type: LeaseEvent, lease: Lease) => {
    for (const onEvent of watchers) onEvent(type, lease);
  };
  const store = (lease: Lease): Lease => {
    const stored = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++version) } };
    const type = leases.has(lease.metadata.name) ? 'MODIFIED' : 'ADDED';
    leases.set(lease.metadata.name, stored);
    report(type, stored);
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
      const lease = leases.get(name);
      if (!lease || (resourceVersion !== undefined && lease.metadata.resourceVersion !== resourceVersion)) return false;
      leases.delete(name);
      report('DELETED', lease);
      return true;
    },
    async list() {
      api.calls++;
      return { items: [...leases.values()], resourceVersion: String(version) };
    },
    async watch(_selector: string, _resourceVersion: string, onEvent: (type: LeaseEvent, lease: Lease) => void) {
      if (!o.live) return () => undefined;
      watchers.add(onEvent);
      return () => void watchers.delete(onEvent);
    },
  };
  return api;
}
