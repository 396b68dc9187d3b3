// The only Kubernetes calls the fleet makes: coordination.k8s.io/v1 Leases in
// one namespace, as plain objects. @kubernetes/client-node is imported here
// and only here, when a fleet starts, so a single server never loads it.
// Writes are compare-and-swap: replace and delete carry the resourceVersion
// they were decided on, and a 409 means someone else wrote first.

export interface Lease {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    /** RFC 3339 with microseconds, as the API server stores a MicroTime. */
    acquireTime?: string;
    renewTime?: string;
  };
}

/** An object whose deletion deletes the Lease (the garbage collector's). */
interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/** BOOKMARK carries only a resourceVersion to resume from. */
export type LeaseEvent = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface LeaseApi {
  /** Creates the Lease; undefined when one of that name exists (409 AlreadyExists). */
  create(lease: Lease): Promise<Lease | undefined>;
  get(name: string): Promise<Lease | undefined>;
  /** Replaces the Lease if it is still at `lease.metadata.resourceVersion`; undefined on a conflict or when it is gone. */
  replace(lease: Lease): Promise<Lease | undefined>;
  /** Deletes the Lease if it is still at `resourceVersion` (when given); false when it changed or was gone. */
  delete(name: string, resourceVersion?: string): Promise<boolean>;
  list(labelSelector: string): Promise<{ items: Lease[]; resourceVersion: string }>;
  /**
   * Watches from `resourceVersion` with bookmarks; `done` is called once when
   * the watch ends, with the error (a 410 Gone has `code` 410). The returned
   * function ends it.
   */
  watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (type: LeaseEvent, lease: Lease) => void,
    done: (err: unknown) => void,
  ): Promise<() => void>;
}

/** An API error's HTTP status, when it has one. */
export const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
};

const iso = (t: unknown): string | undefined => (t === undefined || t === null ? undefined : new Date(t as string).toISOString());

/** A Lease as the client library returns it (Dates, class instances) → plain. */
function plain(raw: unknown): Lease {
  const o = raw as {
    metadata?: {
      name?: string;
      resourceVersion?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      ownerReferences?: OwnerReference[];
    };
    spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: unknown; renewTime?: unknown };
  };
  const spec = o.spec ?? {};
  const acquireTime = iso(spec.acquireTime);
  const renewTime = iso(spec.renewTime);
  return {
    metadata: {
      name: o.metadata?.name ?? '',
      ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
      ...(o.metadata?.labels ? { labels: o.metadata.labels } : {}),
      ...(o.metadata?.annotations ? { annotations: o.metadata.annotations } : {}),
      ...(o.metadata?.ownerReferences?.length
        ? { ownerReferences: o.metadata.ownerReferences.map(({ apiVersion, kind, name, uid }) => ({ apiVersion, kind, name, uid })) }
        : {}),
    },
    spec: {
      ...(spec.holderIdentity !== undefined ? { holderIdentity: spec.holderIdentity } : {}),
      ...(spec.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: spec.leaseDurationSeconds } : {}),
      ...(acquireTime ? { acquireTime } : {}),
      ...(renewTime ? { renewTime } : {}),
    },
  };
}

/**
 * The Lease API of one namespace through @kubernetes/client-node, with
 * in-cluster credentials or $KUBECONFIG (loadFromDefault).
 */
export async function kubernetesLeaseApi(namespace: string): Promise<LeaseApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const watcher = new k8s.Watch(kc);
  const body = (lease: Lease) => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { ...lease.metadata, namespace },
    spec: {
      ...lease.spec,
      acquireTime: lease.spec.acquireTime ? new k8s.V1MicroTime(lease.spec.acquireTime) : undefined,
      renewTime: lease.spec.renewTime ? new k8s.V1MicroTime(lease.spec.renewTime) : undefined,
    },
  });
  const unless = async <T>(codes: number[], call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (err) {
      if (codes.includes(statusOf(err) ?? 0)) return undefined;
      throw err;
    }
  };
  return {
    create: async (lease) => {
      const created = await unless([409], () => api.createNamespacedLease({ namespace, body: body(lease) }));
      return created && plain(created);
    },
    get: async (name) => {
      const got = await unless([404], () => api.readNamespacedLease({ name, namespace }));
      return got && plain(got);
    },
    replace: async (lease) => {
      const replaced = await unless([404, 409], () =>
        api.replaceNamespacedLease({ name: lease.metadata.name, namespace, body: body(lease) }),
      );
      return replaced && plain(replaced);
    },
    delete: async (name, resourceVersion) => {
      const deleted = await unless([404, 409], () =>
        api.deleteNamespacedLease({
          name,
          namespace,
          body: resourceVersion ? { preconditions: { resourceVersion } } : {},
        }),
      );
      return deleted !== undefined;
    },
    list: async (labelSelector) => {
      const list = await api.listNamespacedLease({ namespace, labelSelector });
      return { items: list.items.map(plain), resourceVersion: list.metadata?.resourceVersion ?? '' };
    },
    watch: async (labelSelector, resourceVersion, onEvent, done) => {
      let ended = false;
      const end = (err: unknown) => {
        if (ended) return;
        ended = true;
        done(err);
      };
      const controller = await watcher.watch(
        `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
        { labelSelector, resourceVersion, allowWatchBookmarks: true },
        (type: string, obj: unknown) => {
          if (ended) return;
          if (type === 'ERROR') {
            const status = obj as { code?: number; message?: string };
            end(Object.assign(new Error(`lease watch: ${status.message ?? JSON.stringify(obj)}`), { code: status.code }));
            controller.abort();
            return;
          }
          if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' || type === 'BOOKMARK') onEvent(type, plain(obj));
        },
        end,
      );
      return () => {
        ended = true;
        controller.abort();
      };
    },
  };
}
