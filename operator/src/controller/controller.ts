// The RtmpServer controller: informers on RtmpServers and on the objects they
// own, a work queue keyed by namespace/name, and workers running the
// reconcile. Informers start at once (a standby keeps a warm cache); workers
// start only when this process leads.
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { fleetLabel } from '@flux-rtmpd/rtmpd/fleet-records';
import type { Logger } from 'pino';
import { apiVersion, group, kind, plural } from '../api/rtmpserver.ts';
import { EventCache } from './event-cache.ts';
import { ApiEventRecorder } from './events.ts';
import { countsChanged } from './fleet-status.ts';
import { fieldManager, instanceLabel, managedBy } from './manifest.ts';
import type { Defaults } from './pod.ts';
import { Informer, type ResourceType } from './informer.ts';
import type { Metrics } from './metrics.ts';
import { Reconciler } from './reconcile.ts';
import { recordServerEvent, ServerReferences } from './references.ts';
import { SecretVerdicts, secretReader } from './secrets.ts';
import { WorkQueue } from './workqueue.ts';

export const controllerName = 'rtmpserver';

const rtmpServers: ResourceType = { apiVersion, kind, plural };
// Everything the operator makes carries the managed-by label, so the caches
// hold only the operator's own objects. Deployments are those of operator
// 0.1.0, watched until the migration has removed them.
const owned: ResourceType[] = [
  { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets' },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
  { apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims' },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers' },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', plural: 'roles' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', plural: 'rolebindings' },
];
const ownedSelector = Object.entries(managedBy)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

// The Prometheus Operator's CRD may be installed after the operator started, or
// removed: its informer waits for the API and then enqueues every RtmpServer.
const serviceMonitors: ResourceType = { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', plural: 'servicemonitors' };
const serviceMonitorApiRetryMs = 15_000;

// The Leases rtmpd pods keep (one per pod, one per live stream), labelled with
// their fleet, which is the RtmpServer's name. A change of the counts they
// report reconciles the RtmpServer after this delay, so a busy fleet's status
// is written at most once per delay, however often its pods renew.
const fleetLeases: ResourceType = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases' };
const fleetCountsDelayMs = 10_000;
// The Secrets an RtmpServer names reconcile it when they change. Cached are
// their names and versions only: no Secret's data stays in the operator.
const secrets: ResourceType = { apiVersion: 'v1', kind: 'Secret', plural: 'secrets' };
const secretVersion = (o: KubernetesObject): KubernetesObject => {
  const { name, namespace, resourceVersion } = o.metadata ?? {};
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, resourceVersion } };
};

const fleetKey = (o: KubernetesObject): string | undefined => {
  const fleet = o.metadata?.labels?.[fleetLabel];
  return fleet ? `${o.metadata?.namespace ?? ''}/${fleet}` : undefined;
};

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to watch; all when empty. */
  namespaces: string[];
  log: Logger;
  metrics: Metrics;
  identity: string;
  /** What the operator fills in for unset fields (the rtmpd image). */
  defaults: Defaults;
  workers?: number;
  /** A server whose status says something is still to happen is reconciled again this soon (default 30 s). */
  requeueAfterMs?: number;
  /** Every RtmpServer is reconciled again this often (default 10 min). */
  resyncMs?: number;
  backoff?: { baseDelayMs: number; maxDelayMs: number };
}

/**
 * Drops what the reconcile never reads from a cached object: other managers'
 * field sets, and our own down to the time of our last apply.
 */
function trimmed(obj: KubernetesObject): KubernetesObject {
  const managed = obj.metadata?.managedFields;
  if (!managed) return obj;
  obj.metadata!.managedFields = managed
    .filter((f) => f.manager === fieldManager && f.operation === 'Apply' && !f.subresource)
    .map((f) => ({ manager: f.manager, operation: f.operation, time: f.time }));
  return obj;
}

type ContainerStatus = { name: string; ready?: boolean; restartCount?: number; state?: unknown; lastState?: unknown };
type PodStatus = {
  phase?: string;
  conditions?: unknown[];
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
};

/**
 * Of a Pod, only what the status and the migration read (causes.ts PodView,
 * migrate.ts): its metadata and the phase, conditions and container states
 * (with restarts, readiness and last termination) of its status. The spec is most of a Pod's size, and the operator never reads it.
 */
function podSummary(obj: KubernetesObject): KubernetesObject {
  const pod = trimmed(obj) as KubernetesObject & { spec?: unknown; status?: PodStatus };
  delete pod.spec;
  const status = pod.status;
  if (status) {
    const containers = (list?: ContainerStatus[]) =>
      list?.map(({ name, ready, restartCount, state, lastState }) => ({ name, ready, restartCount, state, lastState }));
    pod.status = {
      phase: status.phase,
      conditions: status.conditions,
      containerStatuses: containers(status.containerStatuses),
      initContainerStatuses: containers(status.initContainerStatuses),
    };
  }
  return pod;
}

const instanceKey = (o: KubernetesObject): string | undefined => {
  const instance = o.metadata?.labels?.[instanceLabel];
  return instance ? `${o.metadata?.namespace ?? ''}/${instance}` : undefined;
};

/** The RtmpServer that owns an object: its controller reference, or for retained claims and pods the instance label. */
function ownerKey(obj: KubernetesObject): string | undefined {
  const ns = obj.metadata?.namespace ?? '';
  const ref = obj.metadata?.ownerReferences?.find((r) => r.kind === kind && r.apiVersion.startsWith(`${group}/`));
  if (ref) return `${ns}/${ref.name}`;
  const instance = obj.metadata?.labels?.[instanceLabel];
  return instance ? `${ns}/${instance}` : undefined;
}

/** The first of these informers' cached objects of that namespace and name. */
function find(list: readonly Informer<KubernetesObject>[] | undefined, namespace: string, name: string): KubernetesObject | undefined {
  for (const i of list ?? []) {
    const o = i.get(namespace, name);
    if (o) return o;
  }
  return undefined;
}

export class Controller {
  readonly queue: WorkQueue;
  readonly #o: ControllerOptions;
  readonly #servers: Informer<KubernetesObject>[] = [];
  readonly #owned = new Map<string, Informer<KubernetesObject>[]>();
  readonly #leases: Informer<KubernetesObject>[] = [];
  readonly #secrets: Informer<KubernetesObject>[] = [];
  readonly #eventCaches: EventCache[] = [];
  readonly #references = new ServerReferences();
  readonly #secretVerdicts = new SecretVerdicts((namespace, secret) => this.#references.namesSecret(namespace, secret));
  readonly #reconciler: Reconciler;
  #workers: Promise<void>[] = [];
  #resync?: NodeJS.Timeout;

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    const { kubeConfig, log } = opts;
    this.queue = new WorkQueue({ ...opts.backoff, metrics: opts.metrics.queue });
    const namespaces = opts.namespaces.length ? opts.namespaces : [undefined];
    for (const namespace of namespaces) {
      const eventCache = new EventCache({
        kubeConfig,
        namespace,
        references: this.#references,
        log,
        onEvent: (ns, kind, name) => {
          const about = find(this.#owned.get(kind), ns, name);
          const key = about && ownerKey(about);
          if (key) this.queue.add(key);
        },
      });
      this.#eventCaches.push(eventCache);
      this.#servers.push(
        new Informer({
          kubeConfig,
          type: rtmpServers,
          namespace,
          transform: trimmed,
          // The Events' cache keeps only what a known server's children may be about.
          onFirstSync: () => eventCache.informers.forEach((i) => i.start()),
          log,
          onEvent: (event, o) => {
            recordServerEvent(this.#references, this.#secretVerdicts, event, o);
            this.queue.add(`${o.metadata?.namespace}/${o.metadata?.name}`);
          },
        }),
      );
      this.#secrets.push(
        new Informer<KubernetesObject>({
          kubeConfig,
          type: secrets,
          namespace,
          transform: secretVersion,
          log,
          onEvent: (event, o) => {
            const { namespace = '', name = '' } = o.metadata ?? {};
            if (event === 'delete') this.#secretVerdicts.forget(namespace, name);
            for (const key of this.#references.serversNamingSecret(namespace, name)) this.queue.add(key);
          },
        }),
      );
      for (const type of [...owned, serviceMonitors]) {
        const informer = new Informer<KubernetesObject>({
          kubeConfig,
          type,
          namespace,
          labelSelector: ownedSelector,
          transform: type.kind === 'Pod' ? podSummary : trimmed,
          indexBy: instanceKey,
          log,
          onEvent: (event, o) => {
            const key = ownerKey(o);
            if (key) this.queue.add(key);
            // The name is free now: a server that wanted it while this one held it (ApplyFailed) takes it at once.
            if (event === 'delete')
              for (const wants of this.#references.serversNamingChild(o.metadata?.namespace ?? '', o.metadata?.name ?? ''))
                this.queue.add(wants);
          },
          ...(type === serviceMonitors ? { optional: { retryMs: serviceMonitorApiRetryMs, onServed: () => this.#enqueueAll() } } : {}),
        });
        this.#owned.set(type.kind, [...(this.#owned.get(type.kind) ?? []), informer]);
      }
      this.#leases.push(
        new Informer<KubernetesObject>({
          kubeConfig,
          type: fleetLeases,
          namespace,
          labelSelector: fleetLabel,
          transform: trimmed,
          indexBy: fleetKey,
          log,
          onEvent: (event, o, old) => {
            const key = fleetKey(o);
            if (key && countsChanged(old, event === 'delete' ? undefined : o)) this.queue.addAfter(key, fleetCountsDelayMs);
          },
        }),
      );
    }
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const readSecret = secretReader(core);
    this.#reconciler = new Reconciler({
      objects: KubernetesObjectApi.makeApiClient(kubeConfig),
      customObjects: kubeConfig.makeApiClient(CustomObjectsApi),
      defaults: opts.defaults,
      requeueAfterMs: opts.requeueAfterMs,
      readSecret: (namespace, name) => {
        opts.metrics.secretReads.inc();
        return readSecret(namespace, name);
      },
      secretVersion: (ns, name) => find(this.#secrets, ns, name)?.metadata?.resourceVersion,
      secretVerdicts: this.#secretVerdicts,
      certificates: opts.metrics.certificates,
      events: new ApiEventRecorder({ core, component: fieldManager, instance: opts.identity, log }),
      log,
      getServer: (ns, name) => find(this.#servers, ns, name),
      getOwned: (k, ns, name) => find(this.#owned.get(k), ns, name),
      listOwned: (k, ns, instance) => (this.#owned.get(k) ?? []).flatMap((i) => i.byIndex(`${ns}/${instance}`)),
      listFleetLeases: (ns, fleet) => this.#leases.flatMap((i) => i.byIndex(`${ns}/${fleet}`)),
      eventsAbout: (namespace, kind, name) => this.#eventCaches.flatMap((c) => c.about(namespace, kind, name)),
    });
  }

  /** The informers started at once; the Events' start once their namespace's servers have synced. */
  get #startedFirst(): Informer<KubernetesObject>[] {
    return [...this.#servers, ...[...this.#owned.values()].flat(), ...this.#leases, ...this.#secrets];
  }

  get #informers(): Informer<KubernetesObject>[] {
    return [...this.#startedFirst, ...this.#eventCaches.flatMap((c) => c.informers)];
  }

  /** Starts the informers (caches); safe before leadership. */
  startInformers(): void {
    for (const i of this.#startedFirst) i.start();
  }

  get synced(): boolean {
    return this.#informers.every((i) => i.synced);
  }

  async waitForSync(timeoutMs = 60_000): Promise<void> {
    await Promise.all(this.#informers.map((i) => i.waitForSync(timeoutMs)));
  }

  /** Starts the workers (on leadership), after the caches have synced. */
  async startWorkers(): Promise<void> {
    await this.waitForSync();
    const workers = this.#o.workers ?? 2;
    this.#o.metrics.maxConcurrentReconciles.set({ controller: controllerName }, workers);
    this.#enqueueAll();
    this.#workers = Array.from({ length: workers }, () => this.#work());
    this.#resync = setInterval(() => this.#enqueueAll(), this.#o.resyncMs ?? 10 * 60_000).unref();
  }

  #enqueueAll(): void {
    for (const i of this.#servers) for (const o of i.list()) this.queue.add(`${o.metadata?.namespace}/${o.metadata?.name}`);
  }

  /** Stops handing out work, waits for running reconciles, stops the informers. */
  async stop(): Promise<void> {
    clearInterval(this.#resync);
    this.queue.shutDown();
    await Promise.all(this.#workers);
    await Promise.all(this.#informers.map((i) => i.stop()));
  }

  async #work(): Promise<void> {
    const { metrics, log } = this.#o;
    const labels = { controller: controllerName };
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const [namespace = '', name = ''] = key.split('/');
      const end = metrics.reconcileTime.startTimer(labels);
      metrics.activeWorkers.inc(labels);
      try {
        const result = await this.#reconciler.reconcile(namespace, name);
        this.queue.forget(key);
        if (result.requeueAfterMs) {
          metrics.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
          this.queue.addAfter(key, result.requeueAfterMs);
        } else {
          metrics.reconcileTotal.inc({ ...labels, result: 'success' });
        }
      } catch (err) {
        metrics.reconcileTotal.inc({ ...labels, result: 'error' });
        metrics.reconcileErrors.inc(labels);
        log.debug({ key, err, retries: this.queue.retries(key) }, 'requeued with backoff');
        this.queue.addRateLimited(key);
      } finally {
        end();
        metrics.activeWorkers.dec(labels);
        this.queue.done(key);
      }
    }
  }
}
