// One reconcile of one RtmpServer, level-triggered and idempotent: read it,
// build the desired children, server-side apply them under one field
// manager, compute the status and write it only when it changed, and record
// Events for what was done or what failed. What was created or updated is
// told from the informer cache, so the reconciler keeps no memory of children.
import {
  ApiException,
  PatchStrategy,
  setHeaderOptions,
  type CustomObjectsApi,
  type KubernetesObject,
  type KubernetesObjectApi,
} from '@kubernetes/client-node';
import { parseConfig, type Config } from '@flux-rtmpd/rtmpd/config';
import type { Logger } from 'pino';
import { apiVersion, group, kind, parseSpec, plural, version, type RtmpServer, type RtmpServerStatus } from '../api/rtmpserver.ts';
import {
  configChanges,
  configFileName,
  desiredState,
  fieldManager,
  referencedSecrets,
  templateHashAnnotation,
  type Defaults,
  type Manifest,
} from './desired.ts';
import type { EventRecorder } from './events.ts';
import { childNames } from './names.ts';
import type { SecretExists } from './secrets.ts';
import { computeStatus, missingSecretsMessage, sameStatus, type Observed } from './status.ts';

export interface ReconcilerDeps {
  objects: KubernetesObjectApi;
  customObjects: CustomObjectsApi;
  events: EventRecorder;
  /** Whether a Secret spec.auth names exists (never what it holds). */
  secretExists: SecretExists;
  defaults: Defaults;
  log: Logger;
  /** The cached RtmpServer (undefined when gone). */
  getServer: (namespace: string, name: string) => KubernetesObject | undefined;
  /** The cached owned object, to tell created from updated. */
  getOwned: (kind: string, namespace: string, name: string) => KubernetesObject | undefined;
  now?: () => Date;
}

export type ReconcileResult = { requeueAfterMs?: number };

const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
/** A Secret the spec names but that is missing is looked for again this often (Secrets are not watched). */
const missingSecretRetryMs = 10_000;

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
  /** Our last status write per object: the resourceVersion it was made against and what it stored. */
  readonly #written = new Map<string, { before: string | undefined; after: RtmpServerStatus }>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const raw = this.#d.getServer(namespace, name) as (KubernetesObject & { spec?: unknown; status?: RtmpServerStatus }) | undefined;
    if (!raw || raw.metadata?.deletionTimestamp) {
      // Garbage collection removes the children.
      this.#written.delete(`${namespace}/${name}`);
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
      await this.#d.events.event(raw, 'Warning', 'InvalidSpec', message);
      return {};
    }

    const desired = desiredState(server, this.#d.defaults);
    const names = childNames(server);
    const observed: Observed = { errors: [] };
    // Each child is applied on its own: one refused change (say, a claim that
    // cannot shrink) does not hold back the others, and every failure is reported.
    const attempt = async <T>(what: string, step: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await step();
      } catch (err) {
        const message = `${what}: ${describeError(err)}`;
        log.warn({ err: message }, 'apply failed');
        observed.errors.push(message);
        return undefined;
      }
    };
    const configApplied = await attempt(`ConfigMap ${names.configMap}`, async () => {
      // What the pods will run must be what rtmpd accepts.
      parseConfig(desired.config);
      await this.#announceConfigChange(raw, server, desired.config, desired.deployment);
      return this.#apply(raw, desired.configMap, log);
    });
    for (const pvc of desired.persistentVolumeClaims)
      await attempt(`PersistentVolumeClaim ${pvc.metadata.name}`, () => this.#apply(raw, pvc, log));
    await attempt(`Service ${names.service}`, () => this.#apply(raw, desired.service, log));
    // The pods must not start on a stale config file.
    if (configApplied) {
      observed.deployment = (await attempt(`Deployment ${names.workload}`, () =>
        this.#apply(raw, desired.deployment, log),
      )) as Observed['deployment'];
    }
    observed.deployment ??= this.#d.getOwned('Deployment', namespace, names.workload) as Observed['deployment'];
    await attempt(`PodDisruptionBudget ${names.podDisruptionBudget}`, () =>
      this.#applyOrRemove(raw, 'PodDisruptionBudget', names.podDisruptionBudget, desired.podDisruptionBudget, log),
    );
    observed.serviceMonitor = await attempt(`ServiceMonitor ${names.serviceMonitor}`, () =>
      this.#serviceMonitor(raw, server, desired.serviceMonitor, log),
    );

    observed.missingSecrets = (await attempt('Secrets', () => this.#missingSecrets(server))) ?? [];

    await this.#writeStatus(raw, currentStatus, computeStatus(server, observed, this.#now()), log);
    if (observed.errors.length) {
      await this.#d.events.event(raw, 'Warning', 'ReconcileFailed', observed.errors.join('; '));
      throw new Error(observed.errors.join('; '));
    }
    if (observed.missingSecrets.length === 0) return {};
    await this.#d.events.event(raw, 'Warning', 'SecretNotFound', missingSecretsMessage(server, observed.missingSecrets));
    return { requeueAfterMs: missingSecretRetryMs };
  }

  /** The Secrets spec.auth names that do not exist, each asked for once. */
  async #missingSecrets(server: RtmpServer): Promise<{ name: string; field: string }[]> {
    const refs = referencedSecrets(server.spec);
    const namespace = server.metadata.namespace ?? '';
    const exists = new Map<string, boolean>();
    for (const name of new Set(refs.map((r) => r.name))) exists.set(name, await this.#d.secretExists(namespace, name));
    return refs.filter((r) => !exists.get(r.name));
  }

  #now(): string {
    return (this.#d.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /**
   * Says, before anything is applied, what a spec change will do to running
   * pods: options rtmpd takes live reach them through the mounted file; a
   * changed pod template (options that need a restart, image, resources, ...)
   * replaces them.
   */
  async #announceConfigChange(owner: KubernetesObject, server: RtmpServer, config: Partial<Config>, workload: Manifest): Promise<void> {
    const { namespace } = server.metadata;
    const names = childNames(server);
    const current = this.#d.getOwned('Deployment', namespace, names.workload);
    const configMap = this.#d.getOwned('ConfigMap', namespace, names.configMap) as { data?: Record<string, string> } | undefined;
    if (!current || !configMap) return; // nothing runs yet
    const changes = configChanges(configMap.data?.[configFileName], config);
    const hash = (o: KubernetesObject | Manifest) => o.metadata?.annotations?.[templateHashAnnotation];
    if (hash(current) !== hash(workload)) {
      const why = changes.restart.length
        ? `options that need a restart changed (${changes.restart.join(', ')})`
        : 'the pod template changed';
      await this.#d.events.event(owner, 'Normal', 'RollingPods', `${why}: the pods are replaced`);
    } else if (changes.live.length) {
      await this.#d.events.event(
        owner,
        'Normal',
        'ConfigChanged',
        `${changes.live.join(', ')} changed: the running pods apply it from their config file, without a restart`,
      );
    }
  }

  async #apply(owner: KubernetesObject, obj: Manifest, log: Logger): Promise<KubernetesObject> {
    const { namespace, name } = obj.metadata;
    const cached = this.#d.getOwned(obj.kind, namespace, name);
    const result = await this.#d.objects.patch(
      obj as KubernetesObject,
      undefined,
      undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    );
    if (!cached) {
      log.info({ object: `${obj.kind}/${name}` }, 'created');
      await this.#d.events.event(owner, 'Normal', 'Created', `created ${obj.kind} ${name}`);
    } else if (appliedAt(result) !== appliedAt(cached)) {
      log.info({ object: `${obj.kind}/${name}` }, 'updated');
      await this.#d.events.event(owner, 'Normal', 'Updated', `updated ${obj.kind} ${name}`);
    }
    return result;
  }

  /** Applies an optional child, or deletes the one we made when it is no longer wanted. */
  async #applyOrRemove(owner: KubernetesObject, kind: string, name: string, desired: Manifest | undefined, log: Logger): Promise<void> {
    if (desired) {
      await this.#apply(owner, desired, log);
      return;
    }
    const namespace = owner.metadata?.namespace ?? '';
    const existing = this.#d.getOwned(kind, namespace, name);
    if (!existing?.metadata?.ownerReferences?.some((r) => r.uid === owner.metadata?.uid)) return;
    try {
      await this.#d.objects.delete(existing);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return;
      throw err;
    }
    log.info({ object: `${kind}/${name}` }, 'deleted');
    await this.#d.events.event(owner, 'Normal', 'Deleted', `deleted ${kind} ${name}`);
  }

  async #serviceMonitor(
    owner: KubernetesObject,
    server: RtmpServer,
    desired: Manifest | undefined,
    log: Logger,
  ): Promise<Observed['serviceMonitor']> {
    if (!desired) {
      // Switched off: remove the one we made, if any (no error when the CRD is absent).
      const name = childNames(server).serviceMonitor;
      try {
        const existing = await this.#d.objects.read({
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'ServiceMonitor',
          metadata: { name, namespace: server.metadata.namespace },
        });
        if (existing.metadata?.ownerReferences?.some((r) => r.uid === server.metadata.uid)) {
          await this.#d.objects.delete(existing);
          await this.#d.events.event(owner, 'Normal', 'Deleted', `deleted ServiceMonitor ${name}`);
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
      await this.#d.events.event(owner, 'Warning', 'ServiceMonitorUnavailable', message);
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
}
