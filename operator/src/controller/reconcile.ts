// One reconcile of one RtmpServer, level-triggered and idempotent: read it,
// build the desired children, server-side apply them under one field
// manager, compute the status and write it only when it changed, and record
// Events for what was done or what failed.
import {
  ApiException,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Api,
  type CustomObjectsApi,
  type KubernetesObject,
  type KubernetesObjectApi,
} from '@kubernetes/client-node';
import { loadConfig } from '@flux-rtmpd/rtmpd/config';
import type { Logger } from 'pino';
import { apiVersion, group, kind, parseSpec, plural, version, type RtmpServer, type RtmpServerStatus } from '../api/rtmpserver.ts';
import { desiredState, fieldManager, names, rtmpdArgs, type Manifest } from './desired.ts';
import { computeStatus, sameStatus, type Observed } from './status.ts';

export interface ReconcilerDeps {
  objects: KubernetesObjectApi;
  customObjects: CustomObjectsApi;
  core: CoreV1Api;
  log: Logger;
  /** The cached RtmpServer (undefined when gone). */
  getServer: (namespace: string, name: string) => KubernetesObject | undefined;
  /** The cached owned object, to tell created from updated. */
  getOwned: (kind: string, namespace: string, name: string) => KubernetesObject | undefined;
  /** reportingInstance of Events. */
  identity: string;
  now?: () => Date;
}

export type ReconcileResult = { requeueAfterMs?: number };

const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

const describeError = (err: unknown): string => {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return `${err.code}: ${status.message}`;
    } catch {
      /* not JSON */
    }
    return `${err.code}: ${body}`;
  }
  return err instanceof Error ? err.message : String(err);
};

const monitoringAbsent = (err: unknown): boolean =>
  (err instanceof ApiException && err.code === 404) ||
  (err instanceof Error && /Failed to fetch resource metadata|Unrecognized API version and kind/.test(err.message));

/** When our manager last changed the object (server-side apply moves it only on a change). */
const appliedAt = (o: KubernetesObject | undefined): string | undefined => {
  const entry = o?.metadata?.managedFields?.find((f) => f.manager === fieldManager && f.operation === 'Apply' && !f.subresource);
  return entry?.time ? new Date(entry.time).toISOString() : undefined;
};

export class Reconciler {
  readonly #d: ReconcilerDeps;
  readonly #applied = new Map<string, string | undefined>();
  readonly #recentEvents = new Map<string, number>();
  /** Our last status write per object: the resourceVersion it was made against and what it stored. */
  readonly #written = new Map<string, { before: string | undefined; after: RtmpServerStatus }>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const raw = this.#d.getServer(namespace, name) as (KubernetesObject & { spec?: unknown; status?: RtmpServerStatus }) | undefined;
    if (!raw || raw.metadata?.deletionTimestamp) {
      // Garbage collection removes the children; forget what we remembered about them.
      this.#written.delete(`${namespace}/${name}`);
      for (const key of this.#applied.keys()) {
        const [, ns, child = ''] = key.split('/');
        if (ns === namespace && (child === name || child.startsWith(`${name}-`))) this.#applied.delete(key);
      }
      return {};
    }
    const meta = raw.metadata ?? {};
    // The cache may not have seen our last status write yet: then that write is the newer truth.
    const written = this.#written.get(`${namespace}/${name}`);
    const currentStatus = written && written.before === meta.resourceVersion ? written.after : raw.status;
    const log = this.#d.log.child({ rtmpserver: `${namespace}/${name}`, generation: meta.generation });

    let server: RtmpServer;
    try {
      server = {
        apiVersion,
        kind,
        metadata: { name, namespace, uid: meta.uid ?? '', generation: meta.generation, resourceVersion: meta.resourceVersion },
        spec: parseSpec(raw.spec),
        ...(currentStatus ? { status: currentStatus } : {}),
      };
    } catch (err) {
      // Only possible for objects stored before a schema change: the API server validates new ones.
      const message = `invalid spec: ${err instanceof Error ? err.message : String(err)}`;
      await this.#event(raw, 'Warning', 'InvalidSpec', message);
      return {};
    }

    const desired = desiredState(server);
    const observed: Observed = {};
    try {
      // What the pods will run must be what rtmpd accepts.
      loadConfig(rtmpdArgs(desired.config), {});
      await this.#apply(raw, desired.configMap, log);
      for (const pvc of desired.persistentVolumeClaims) await this.#apply(raw, pvc, log);
      await this.#apply(raw, desired.service, log);
      observed.deployment = (await this.#apply(raw, desired.deployment, log)) as Observed['deployment'];
      observed.serviceMonitor = await this.#serviceMonitor(raw, server, desired.serviceMonitor, log);
    } catch (err) {
      const message = describeError(err);
      log.warn({ err: message }, 'reconcile failed');
      observed.reconcileError = message;
      observed.deployment ??= this.#d.getOwned('Deployment', namespace, names(server).deployment) as Observed['deployment'];
      await this.#event(raw, 'Warning', 'ReconcileFailed', message);
      await this.#writeStatus(raw, currentStatus, computeStatus(server, observed, this.#now()), log);
      throw err;
    }
    await this.#writeStatus(raw, currentStatus, computeStatus(server, observed, this.#now()), log);
    return {};
  }

  #now(): string {
    return (this.#d.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  async #apply(owner: KubernetesObject, obj: Manifest, log: Logger): Promise<KubernetesObject> {
    const { namespace, name } = obj.metadata;
    const key = `${obj.kind}/${namespace}/${name}`;
    const cached = this.#d.getOwned(obj.kind, namespace, name);
    const before = this.#applied.has(key) ? this.#applied.get(key) : appliedAt(cached);
    const result = await this.#d.objects.patch(
      obj as KubernetesObject,
      undefined,
      undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    );
    const after = appliedAt(result);
    this.#applied.set(key, after);
    if (!cached && before === undefined) {
      log.info({ object: key }, 'created');
      await this.#event(owner, 'Normal', 'Created', `created ${obj.kind} ${name}`);
    } else if (after !== before) {
      log.info({ object: key }, 'updated');
      await this.#event(owner, 'Normal', 'Updated', `updated ${obj.kind} ${name}`);
    }
    return result;
  }

  async #serviceMonitor(
    owner: KubernetesObject,
    server: RtmpServer,
    desired: Manifest | undefined,
    log: Logger,
  ): Promise<Observed['serviceMonitor']> {
    if (!desired) {
      // Switched off: remove the one we made, if any (no error when the CRD is absent).
      const name = names(server).serviceMonitor;
      try {
        const existing = await this.#d.objects.read({
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'ServiceMonitor',
          metadata: { name, namespace: server.metadata.namespace },
        });
        if (existing.metadata?.ownerReferences?.some((r) => r.uid === server.metadata.uid)) {
          await this.#d.objects.delete(existing);
          await this.#event(owner, 'Normal', 'Deleted', `deleted ServiceMonitor ${name}`);
        }
      } catch (err) {
        if (!monitoringAbsent(err)) log.debug({ err: describeError(err) }, 'ServiceMonitor cleanup skipped');
      }
      return undefined;
    }
    try {
      await this.#apply(owner, desired, log);
      return { ok: true, reason: 'Applied', message: `ServiceMonitor ${desired.metadata.name} applied` };
    } catch (err) {
      if (!monitoringAbsent(err)) throw err;
      const message =
        'metrics.serviceMonitor.enabled is set but the monitoring.coreos.com/v1 ServiceMonitor API is not installed; pods are still scraped through their prometheus.io annotations';
      await this.#event(owner, 'Warning', 'ServiceMonitorUnavailable', message);
      return { ok: false, reason: 'CRDNotInstalled', message };
    }
  }

  async #writeStatus(raw: KubernetesObject, current: RtmpServerStatus | undefined, status: RtmpServerStatus, log: Logger): Promise<void> {
    if (sameStatus(status, current ?? {})) return;
    const { name = '', namespace = '', resourceVersion } = raw.metadata ?? {};
    try {
      await this.#d.customObjects.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          namespace,
          plural,
          name,
          body: { apiVersion, kind, metadata: { name, namespace }, status },
          fieldManager,
          force: true,
        },
        applyOptions,
      );
      this.#written.set(`${namespace}/${name}`, { before: resourceVersion, after: status });
      log.debug({ status }, 'status written');
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return; // deleted meanwhile
      throw err;
    }
  }

  /** A core/v1 Event on the RtmpServer; the same one is not repeated within 10 minutes. */
  async #event(about: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const { name = '', namespace = '', uid, resourceVersion } = about.metadata ?? {};
    const dedupe = `${uid}/${type}/${reason}/${message}`;
    const now = this.#d.now?.() ?? new Date();
    const last = this.#recentEvents.get(dedupe);
    if (last !== undefined && now.getTime() - last < 10 * 60_000) return;
    this.#recentEvents.set(dedupe, now.getTime());
    if (this.#recentEvents.size > 10_000) this.#recentEvents.clear();
    try {
      await this.#d.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { apiVersion, kind, name, namespace, uid, resourceVersion },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: fieldManager },
          reportingComponent: fieldManager,
          reportingInstance: this.#d.identity.slice(0, 128),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.#d.log.warn({ err: describeError(err), reason }, 'recording an Event failed');
    }
  }
}
