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
import { z } from 'zod';
import { apiVersion, group, kind, parseSpec, plural, version, type RtmpServer, type RtmpServerStatus } from '../api/rtmpserver.ts';
import {
  certificateCause,
  claimCauses,
  creationCauses,
  invalidSecretsCause,
  missingClaimCauses,
  missingSecretsCause,
  notExpandableCause,
  podCauses,
  type Cause,
  type EventView,
} from './causes.ts';
import { desiredState, templateHashAnnotation, type DesiredState } from './desired.ts';
import type { EventRecorder } from './events.ts';
import { fleetTokenSecret, newFleetToken } from './fleet.ts';
import { fleetCounts, type FleetCounts } from './fleet-status.ts';
import { fieldManager, volumeLabel, type Manifest } from './manifest.ts';
import { migrate, type MigrationState } from './migrate.ts';
import { childNames } from './names.ts';
import type { Defaults } from './pod.ts';
import type { CertificateMetrics } from './metrics.ts';
import { configChanges, configFileName, referencedSecrets, type SecretReference } from './rtmpd-config.ts';
import { checkSecret, type ReadSecret, type SecretVerdict, type SecretVerdicts } from './secrets.ts';
import { computeStatus, invalidSpecStatus, sameStatus, settled, type Observed } from './status.ts';
import { expandedClaims, volumeNames, type VolumeName } from './storage.ts';

export interface ReconcilerDeps {
  objects: KubernetesObjectApi;
  customObjects: CustomObjectsApi;
  events: EventRecorder;
  /** A Secret spec.auth, spec.webhooks, spec.forwards or spec.tls names, to check it as rtmpd will read it. */
  readSecret: ReadSecret;
  /** The resourceVersion of a Secret in the watch's cache (undefined: it does not exist). */
  secretVersion: (namespace: string, name: string) => string | undefined;
  /** The verdicts on the Secrets' current versions, so that a Secret is read only when it changed. */
  secretVerdicts: SecretVerdicts;
  /** The notAfter of each server's spec.tls certificate, as a metric. */
  certificates: CertificateMetrics;
  defaults: Defaults;
  log: Logger;
  /** The cached RtmpServer (undefined when gone). */
  getServer: (namespace: string, name: string) => KubernetesObject | undefined;
  /** The cached owned object, to tell created from updated. */
  getOwned: (kind: string, namespace: string, name: string) => KubernetesObject | undefined;
  /** The cached owned objects of one kind that belong to an RtmpServer (by its instance label). */
  listOwned: (kind: string, namespace: string, instance: string) => KubernetesObject[];
  /** The cached Leases of a fleet (an RtmpServer's pods), for the status's counts. */
  listFleetLeases: (namespace: string, fleet: string) => KubernetesObject[];
  /** The cached Events about one object (those causes.ts eventSelectors select), read when the pods do not come up. */
  eventsAbout: (namespace: string, kind: string, name: string) => EventView[];
  /** How soon a server whose status says something is still to happen is reconciled again (default 30 s). */
  requeueAfterMs?: number;
  now?: () => Date;
}

export type ReconcileResult = { requeueAfterMs?: number };
const defaultRequeueAfterMs = 30_000;

const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

type Cached = KubernetesObject & {
  spec?: {
    resources?: { requests?: { storage?: string } };
    storageClassName?: string;
    volumeClaimTemplates?: { metadata?: { name?: string }; spec?: { resources?: { requests?: { storage?: string } } } }[];
  };
  status?: {
    readyReplicas?: number;
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  data?: Record<string, string>;
};

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

/** The PersistentVolumeClaimResize admission's refusal: the claim's StorageClass does not allow it to grow. */
const resizeRefused = (err: unknown): boolean =>
  err instanceof ApiException && err.code === 403 && /storageclass that provisions the pvc must support resize/.test(describeError(err));

/** Each refused field on its own, one line for a condition's message. */
const describeSpecError = (err: unknown): string =>
  err instanceof z.ZodError ? err.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ') : String(err);

const monitoringAbsent = (err: unknown): boolean =>
  (err instanceof ApiException && err.code === 404) ||
  (err instanceof Error && /Failed to fetch resource metadata|Unrecognized API version and kind/.test(err.message));

/** When our manager last changed the object (server-side apply moves it only on a change). */
const appliedAt = (o: KubernetesObject | undefined): string | undefined => {
  const entry = o?.metadata?.managedFields?.find((f) => f.manager === fieldManager && f.operation === 'Apply' && !f.subresource);
  return entry?.time ? new Date(entry.time).toISOString() : undefined;
};

/**
 * Whether our apply changed the object. A cached copy may lag other writers,
 * so there only our Apply entry's time tells; a copy just read is current, so
 * any new resourceVersion is ours (the entry's time has whole seconds only).
 */
const changedByApply = (before: KubernetesObject, result: KubernetesObject, fromCache: boolean): boolean =>
  fromCache ? appliedAt(result) !== appliedAt(before) : result.metadata?.resourceVersion !== before.metadata?.resourceVersion;

/** The storage sizes in an existing StatefulSet's volumeClaimTemplates. */
const templateSizes = (sts: Cached | undefined): Partial<Record<VolumeName, string>> =>
  Object.fromEntries(
    (sts?.spec?.volumeClaimTemplates ?? []).flatMap((t) => {
      const size = t.spec?.resources?.requests?.storage;
      return t.metadata?.name && size ? [[t.metadata.name, size]] : [];
    }),
  );

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
      this.#d.certificates.remove(namespace, name);
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
      const why = `invalid spec: ${describeSpecError(err)}`;
      // A spec that does not parse names no Secret: the series of an earlier spec's certificate goes, and the status says why.
      this.#d.certificates.remove(namespace, name);
      await this.#writeStatus(raw, currentStatus, invalidSpecStatus(currentStatus, meta.generation, why, this.#now()), log);
      await this.#d.events.event(raw, 'Warning', 'InvalidSpec', why);
      return {};
    }

    const names = childNames(server);
    const sts = this.#d.getOwned('StatefulSet', namespace, names.workload) as Cached | undefined;
    const desired = desiredState(server, this.#d.defaults, { claimTemplateSizes: templateSizes(sts) });
    const observed: Observed = { errors: [], causes: [] };
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
      await this.#announceConfigChange(raw, server, desired.config, desired.statefulSet, sts);
      return this.#apply(raw, desired.configMap, log);
    });
    for (const m of desired.podAccess) await attempt(`${m.kind} ${m.metadata.name}`, () => this.#apply(raw, m, log));
    await attempt(`Secret ${names.fleetTokenSecret}`, () => this.#createFleetToken(raw, server, log));
    // A claim that cannot grow is a cause, not an error to retry with backoff: only a change of the spec or the StorageClass helps.
    const growClaim = (claim: Manifest, step: () => Promise<unknown>) =>
      attempt(`PersistentVolumeClaim ${claim.metadata.name}`, async () => {
        try {
          await step();
        } catch (err) {
          if (!resizeRefused(err)) throw err;
          observed.causes.push(this.#notExpandable(claim));
        }
      });
    for (const pvc of desired.persistentVolumeClaims) await growClaim(pvc, () => this.#apply(raw, pvc, log));
    await attempt(`Service ${names.service}`, () => this.#apply(raw, desired.service, log));
    await attempt(`Service ${names.headlessService}`, () => this.#apply(raw, desired.headlessService, log));
    const migration = await attempt('migration from operator 0.1.0', () => this.#migrate(raw, server, desired, sts));
    if (migration?.kind === 'waiting') observed.migrating = migration.message;
    if (migration?.kind === 'failed') observed.causes.push(migration.cause);
    // The pods must not start on a stale config file, nor before their claims hold the old files.
    if (configApplied && migration?.kind === 'done') {
      observed.statefulSet = (await attempt(`StatefulSet ${names.workload}`, () =>
        this.#apply(raw, desired.statefulSet, log),
      )) as Observed['statefulSet'];
    }
    observed.statefulSet ??= sts as Observed['statefulSet'];
    for (const patch of expandedClaims(server, this.#perPodClaims(server))) await growClaim(patch, () => this.#patch(patch, log));
    await attempt(`PodDisruptionBudget ${names.podDisruptionBudget}`, () =>
      this.#applyOrRemove(raw, 'PodDisruptionBudget', names.podDisruptionBudget, desired.podDisruptionBudget, log),
    );
    await attempt(`HorizontalPodAutoscaler ${names.horizontalPodAutoscaler}`, () =>
      this.#applyOrRemove(raw, 'HorizontalPodAutoscaler', names.horizontalPodAutoscaler, desired.horizontalPodAutoscaler, log),
    );
    observed.serviceMonitor = await attempt(`ServiceMonitor ${names.serviceMonitor}`, () =>
      this.#serviceMonitor(raw, server, desired.serviceMonitor, log),
    );
    if (!observed.migrating) observed.causes.push(...(await this.#causes(server, observed.statefulSet as Cached | undefined)));
    // The root causes when they apply: pods cannot start without the Secrets they mount, nor with what rtmpd cannot use.
    const secrets = (await attempt('Secrets', () => this.#secretCauses(server))) ?? { causes: [], expiring: [] };
    observed.causes.unshift(...secrets.causes);
    observed.fleet = this.#fleetCounts(server);

    await this.#writeStatus(raw, currentStatus, computeStatus(server, observed, this.#now()), log);
    if (observed.errors.length) {
      await this.#d.events.event(raw, 'Warning', 'ReconcileFailed', observed.errors.join('; '));
      throw new Error(observed.errors.join('; '));
    }
    for (const cause of [...secrets.causes, ...secrets.expiring]) await this.#d.events.event(raw, 'Warning', cause.reason, cause.message);
    // Pods, claims, Jobs, the named Secrets and the Events the causes read are watched; the requeue is for
    // what no watch sees while the status says something is still to happen: a claim of the user's that
    // appears (not ours, so not watched), a Warning or a crash that grows old and no longer counts.
    return settled(server, observed) ? {} : { requeueAfterMs: this.#d.requeueAfterMs ?? defaultRequeueAfterMs };
  }

  /** The next step of the move from operator 0.1.0's Deployment, if there is one to make. */
  async #migrate(owner: KubernetesObject, server: RtmpServer, desired: DesiredState, sts: Cached | undefined): Promise<MigrationState> {
    const { namespace, name } = server.metadata;
    const names = childNames(server);
    const template = (
      desired.statefulSet.spec as {
        template: { spec: { securityContext: object; containers: { image: string; securityContext: object }[] } };
      }
    ).template.spec;
    const state = await migrate({
      server,
      deployment: this.#d.getOwned('Deployment', namespace, names.workload),
      statefulSet: sts,
      job: this.#d.getOwned('Job', namespace, names.migrationJob),
      pods: this.#d.listOwned('Pod', namespace, name),
      claims: this.#d.listOwned('PersistentVolumeClaim', namespace, name),
      pod: {
        image: template.containers[0]!.image,
        securityContext: template.securityContext,
        containerSecurityContext: template.containers[0]!.securityContext,
      },
      apply: (m) => this.#apply(owner, m, this.#d.log),
      remove: async (o) => {
        await this.#d.objects.delete(o, undefined, undefined, undefined, undefined, 'Background');
        await this.#d.events.event(owner, 'Normal', 'Migrating', `deleted ${o.kind ?? ''} ${o.metadata?.name ?? ''} of operator 0.1.0`);
      },
      annotate: (o, annotations) =>
        this.#d.objects
          .patch(
            { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata?.name, namespace, annotations } },
            undefined,
            undefined,
            fieldManager,
            undefined,
            PatchStrategy.MergePatch,
          )
          .then(() => undefined),
    });
    if (state.kind === 'done' && state.migrated?.length) {
      await this.#d.events.event(
        owner,
        'Normal',
        'Migrated',
        `copied ${state.migrated.map((v) => `${names[v]} to ${names.perPodClaim(v, 0)}`).join(' and ')}; the old claims stay until you delete them`,
      );
    }
    return state;
  }

  /** Creates the fleet token's Secret when it does not exist (409: it does); an existing one is never read or replaced. */
  async #createFleetToken(owner: KubernetesObject, server: RtmpServer, log: Logger): Promise<void> {
    const name = childNames(server).fleetTokenSecret;
    try {
      await this.#d.objects.create(fleetTokenSecret(server, newFleetToken()) as KubernetesObject, undefined, undefined, fieldManager);
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return;
      throw err;
    }
    log.info({ object: `Secret/${name}` }, 'created');
    await this.#d.events.event(owner, 'Normal', 'Created', `created Secret ${name} with a new fleet token`);
  }

  /** The live counts the pods report in their Leases, for the pods that exist. */
  #fleetCounts(server: RtmpServer): FleetCounts {
    const { namespace, name } = server.metadata;
    const running = new Set(
      (this.#d.listOwned('Pod', namespace, name) as Cached[])
        .filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
        .map((p) => p.metadata?.name ?? ''),
    );
    return fleetCounts(this.#d.listFleetLeases(namespace, name), running);
  }

  /** The per-pod claims the StatefulSet made, with their volume and requested size. */
  #perPodClaims(server: RtmpServer): { name: string; volume: VolumeName; size: string | undefined }[] {
    const { namespace, name } = server.metadata;
    return (this.#d.listOwned('PersistentVolumeClaim', namespace, name) as Cached[]).flatMap((c) => {
      const volume = c.metadata?.labels?.[volumeLabel] as VolumeName | undefined;
      const claim = c.metadata?.name ?? '';
      if (!volume || !volumeNames.includes(volume) || !claim.startsWith(`${volume}-${name}-`)) return [];
      return [{ name: claim, volume, size: c.spec?.resources?.requests?.storage }];
    });
  }

  /** Why a claim stays at its size, from the cached claim and the size the spec asks for. */
  #notExpandable(desired: Manifest): Cause {
    const { namespace, name } = desired.metadata;
    const wanted = (desired as { spec?: Cached['spec'] }).spec?.resources?.requests?.storage ?? '';
    const claim = this.#d.getOwned('PersistentVolumeClaim', namespace, name) as Cached | undefined;
    return notExpandableCause(name, wanted, claim?.spec?.storageClassName, claim?.spec?.resources?.requests?.storage);
  }

  /** Why pods are missing or not ready, when the API server says why; nothing is read while all are ready. */
  async #causes(server: RtmpServer, sts: Cached | undefined): Promise<Cause[]> {
    const { namespace, name } = server.metadata;
    if ((sts?.status?.readyReplicas ?? 0) >= server.spec.replicas) return [];
    const names = childNames(server);
    const missing: string[] = [];
    for (const v of volumeNames) {
      const claim = server.spec.storage[v].existingClaim;
      if (claim && !(await this.#exists({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claim, namespace } })))
        missing.push(claim);
    }
    const now = this.#d.now?.() ?? new Date();
    const claims = this.#d.listOwned('PersistentVolumeClaim', namespace, name) as Cached[];
    const claimEvents = claims.flatMap((c) => this.#d.eventsAbout(namespace, 'PersistentVolumeClaim', c.metadata?.name ?? ''));
    return [
      ...missingClaimCauses(missing),
      ...creationCauses(names.workload, this.#d.eventsAbout(namespace, 'StatefulSet', names.workload), now),
      ...podCauses(this.#d.listOwned('Pod', namespace, name), now),
      ...claimCauses(claims, claimEvents, now),
    ];
  }

  async #exists(o: KubernetesObject): Promise<boolean> {
    return (await this.#read(o)) !== undefined;
  }

  async #read(o: KubernetesObject): Promise<KubernetesObject | undefined> {
    try {
      return await this.#d.objects.read(o as KubernetesObject & { metadata: { name: string; namespace: string } });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  /** A merge patch of fields another manager created the object with (a StatefulSet's claims). */
  async #patch(obj: Manifest, log: Logger): Promise<void> {
    await this.#d.objects.patch(obj as KubernetesObject, undefined, undefined, fieldManager, undefined, PatchStrategy.MergePatch);
    log.info({ object: `${obj.kind}/${obj.metadata.name}` }, 'patched');
  }

  /**
   * The Secrets the spec names that do not exist, those rtmpd cannot use, and
   * an expired spec.tls certificate (causes), or one that expires soon (only
   * an Event). Whether a Secret exists is the watch's word.
   */
  async #secretCauses(server: RtmpServer): Promise<{ causes: Cause[]; expiring: Cause[] }> {
    const refs = referencedSecrets(server.spec);
    const { namespace, name } = server.metadata;
    const verdicts = new Map<SecretReference, SecretVerdict | undefined>();
    for (const secret of new Set(refs.map((r) => r.name))) {
      const named = refs.filter((r) => r.name === secret);
      const found = await this.#verdicts(namespace, secret, named);
      named.forEach((ref, i) => verdicts.set(ref, found?.[i]));
    }
    const invalid = refs.flatMap((ref) => {
      const problem = verdicts.get(ref)?.problem;
      return problem ? [{ ...ref, problem }] : [];
    });
    const tls = refs.find((r) => r.format === 'tlsPair');
    const notAfter = tls && verdicts.get(tls)?.notAfter;
    if (tls && notAfter) this.#d.certificates.set(namespace, name, tls.name, notAfter);
    else this.#d.certificates.remove(namespace, name);
    const certificate = tls && notAfter ? certificateCause(tls, notAfter, this.#d.now?.() ?? new Date()) : undefined;
    const causes = [
      missingSecretsCause(
        namespace,
        refs.filter((r) => !verdicts.get(r)),
      ),
      invalidSecretsCause(invalid),
      certificate?.reason === 'CertificateExpired' ? certificate : undefined,
    ].filter((c) => c !== undefined);
    return { causes, expiring: certificate?.reason === 'CertificateExpiring' ? [certificate] : [] };
  }

  /** The verdicts on one Secret for each reference to it, cached per resourceVersion; undefined when it does not exist. */
  async #verdicts(namespace: string, secret: string, refs: SecretReference[]): Promise<SecretVerdict[] | undefined> {
    const version = this.#d.secretVersion(namespace, secret);
    if (version === undefined) return undefined;
    const cached = refs.map((ref) => this.#d.secretVerdicts.get(namespace, version, ref));
    if (cached.every((v): v is SecretVerdict => v !== undefined)) return cached;
    const read = await this.#d.readSecret(namespace, secret);
    if (!read) return undefined;
    return refs.map((ref) => {
      const verdict = checkSecret(ref, read.data);
      this.#d.secretVerdicts.set(namespace, read.resourceVersion, ref, verdict);
      return verdict;
    });
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
  async #announceConfigChange(
    owner: KubernetesObject,
    server: RtmpServer,
    config: Partial<Config>,
    workload: Manifest,
    current: KubernetesObject | undefined,
  ): Promise<void> {
    const configMap = this.#d.getOwned('ConfigMap', server.metadata.namespace, childNames(server).configMap) as Cached | undefined;
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
    // Two RtmpServers can name the same child ("edge"'s headless Service is "edge-pods", the name of
    // "edge-pods"'s Service): with one field manager and force, each apply would take it from the other.
    const controller = cached?.metadata?.ownerReferences?.find((r) => r.controller);
    if (controller && controller.uid !== owner.metadata?.uid)
      throw new Error(`it belongs to ${controller.kind} ${controller.name} (uid ${controller.uid}); rename one of the two`);
    // Not cached is not "absent": a child stripped of its labels leaves the cache (the watch selects
    // by label) and is still there. Only then is it read, to tell a take-back from a creation.
    const before = cached ?? (await this.#read(obj as KubernetesObject));
    const result = await this.#d.objects.patch(
      obj as KubernetesObject,
      undefined,
      undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    );
    if (!before) {
      log.info({ object: `${obj.kind}/${name}` }, 'created');
      await this.#d.events.event(owner, 'Normal', 'Created', `created ${obj.kind} ${name}`);
    } else if (changedByApply(before, result, cached !== undefined)) {
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
