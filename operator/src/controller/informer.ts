// An informer: list, then watch from the list's resourceVersion with
// bookmarks, keeping a cache and telling a handler what changed. A watch that
// ends is resumed from the last seen resourceVersion; 410 Gone (the version
// was compacted away) triggers a fresh list; errors back off exponentially.
import { KubernetesObjectApi, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { sleep } from '@flux-rtmpd/rtmpd/bounded-wait';

export interface ResourceType {
  apiVersion: string;
  kind: string;
  plural: string;
}

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  type: ResourceType;
  /** Watch one namespace; all namespaces when unset. */
  namespace?: string;
  labelSelector?: string;
  /** Caches only the objects that match it (the API server's field selector, e.g. an Event's type). */
  fieldSelector?: string;
  log: Logger;
  onEvent: (event: InformerEvent, obj: T, old?: T) => void;
  /** Trims an object before it is cached (e.g. fields the controller never reads). */
  transform?: (obj: T) => T;
  /**
   * Caches (and reports) only the objects, trimmed, for which it is true: a filter the
   * API server's selectors cannot express. A cached object it no longer keeps is dropped
   * and reported deleted; one it did not keep is never reported.
   */
  keep?: (obj: T) => boolean;
  /** Groups cached objects by this key, for byIndex(); undefined leaves an object out. */
  indexBy?: (obj: T) => string | undefined;
  /** Called once, when the first list has filled the cache. */
  onFirstSync?: () => void;
  /** Longest reconnect backoff (default 30 s). */
  maxBackoffMs?: number;
  /**
   * For a kind whose API may be served only later or not at all (a CRD such as
   * the Prometheus Operator's): while it is not served, the informer counts as
   * synced with nothing cached and lists again every retryMs; onServed is
   * called when it appears.
   */
  optional?: { retryMs: number; onServed: () => void };
}

const objectKey = (o: KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

class Gone extends Error {}

/** The API server (or its discovery) answered 404: the kind is not served. */
const notServed = (err: unknown): boolean => (err as { code?: number } | null)?.code === 404;

export class Informer<T extends KubernetesObject> {
  readonly #opts: InformerOptions<T>;
  readonly #cache = new Map<string, T>();
  readonly #index = new Map<string, Set<string>>();
  readonly #objects: KubernetesObjectApi;
  readonly #watch: Watch;
  #resourceVersion = '';
  #synced = false;
  /** Aborted by stop(): cuts a backoff short, also one that starts after stop() (a request was in flight). */
  readonly #stopping = new AbortController();
  #abort?: AbortController;
  #endWatch?: () => void;
  #failures = 0;
  #loop?: Promise<void>;
  #absent = false;
  /** Settles on stop(), so a stop need not wait out a list of thousands of objects on a busy API server. */
  readonly #whenStopped = new Promise<void>((resolve) => this.#stopping.signal.addEventListener('abort', () => resolve(), { once: true }));

  constructor(opts: InformerOptions<T>) {
    this.#opts = opts;
    this.#objects = KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.#watch = new Watch(opts.kubeConfig);
  }

  get synced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /** The cached objects whose indexBy key is `key`. */
  byIndex(key: string): T[] {
    return [...(this.#index.get(key) ?? [])].flatMap((k) => this.#cache.get(k) ?? []);
  }

  #set(key: string, obj: T): void {
    const old = this.#cache.get(key);
    if (old) this.#unindex(key, old);
    this.#cache.set(key, obj);
    const indexKey = this.#opts.indexBy?.(obj);
    if (indexKey === undefined) return;
    let keys = this.#index.get(indexKey);
    if (!keys) this.#index.set(indexKey, (keys = new Set()));
    keys.add(key);
  }

  #delete(key: string): void {
    const old = this.#cache.get(key);
    if (old) this.#unindex(key, old);
    this.#cache.delete(key);
  }

  #unindex(key: string, obj: T): void {
    const indexKey = this.#opts.indexBy?.(obj);
    if (indexKey === undefined) return;
    const keys = this.#index.get(indexKey);
    keys?.delete(key);
    if (keys?.size === 0) this.#index.delete(indexKey);
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#abort?.abort();
    this.#endWatch?.(); // also when the watch request has not been answered yet
    await this.#loop;
  }

  /** Resolves once the first list has filled the cache. */
  async waitForSync(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#synced) {
      if (Date.now() > deadline) throw new Error(`${this.#opts.type.kind} informer did not sync within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get #path(): string {
    const { apiVersion, plural } = this.#opts.type;
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return this.#opts.namespace ? `${base}/namespaces/${this.#opts.namespace}/${plural}` : `${base}/${plural}`;
  }

  async #run(): Promise<void> {
    let needList = true;
    while (!this.#stopping.signal.aborted) {
      try {
        if (needList) {
          await Promise.race([this.#list(), this.#whenStopped]);
          if (this.#stopping.signal.aborted) break;
          needList = false;
        }
        await this.#watchOnce();
        this.#failures = 0;
      } catch (err) {
        if (this.#stopping.signal.aborted) break;
        if (this.#opts.optional && notServed(err)) {
          this.#notServed(this.#opts.optional.retryMs);
          needList = true;
          await sleep(this.#opts.optional.retryMs, this.#stopping.signal);
          continue;
        }
        if (err instanceof Gone) {
          this.#opts.log.info({ kind: this.#opts.type.kind }, 'watch: resourceVersion too old (410 Gone), re-listing');
          needList = true;
          continue;
        }
        const delay = this.#backoff();
        this.#opts.log.warn({ kind: this.#opts.type.kind, err, retryInMs: delay }, 'watch failed, reconnecting');
        // A failed list must be retried as a list; a failed watch resumes from its
        // version, except for an optional kind, whose list tells whether it is still served.
        if (!this.#resourceVersion || this.#opts.optional) needList = true;
        await sleep(delay, this.#stopping.signal);
      }
    }
  }

  /** Forgets every object of a kind that is no longer served (or never was) and counts as synced. */
  #notServed(retryMs: number): void {
    if (!this.#absent) this.#opts.log.info({ kind: this.#opts.type.kind, retryInMs: retryMs }, 'API not served; looking again later');
    this.#absent = true;
    for (const [key, old] of this.#cache) {
      this.#delete(key);
      this.#opts.onEvent('delete', old);
    }
    this.#resourceVersion = '';
    this.#synced = true;
  }

  #backoff(): number {
    const max = this.#opts.maxBackoffMs ?? 30_000;
    const delay = Math.min(800 * 2 ** this.#failures, max);
    this.#failures++;
    return delay / 2 + Math.random() * (delay / 2);
  }

  async #list(): Promise<void> {
    const { apiVersion, kind } = this.#opts.type;
    const list = await this.#objects.list<T>(
      apiVersion,
      kind,
      this.#opts.namespace,
      undefined,
      undefined,
      undefined,
      this.#opts.fieldSelector,
      this.#opts.labelSelector,
    );
    if (this.#stopping.signal.aborted) return;
    const seen = new Set<string>();
    for (const listed of list.items) {
      const item = this.#opts.transform?.(listed) ?? listed;
      item.apiVersion ??= apiVersion;
      item.kind ??= kind;
      if (this.#opts.keep?.(item) === false) continue; // not seen: dropped below if cached
      const key = objectKey(item);
      seen.add(key);
      const old = this.#cache.get(key);
      this.#set(key, item);
      if (!old) this.#opts.onEvent('add', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.#opts.onEvent('update', item, old);
    }
    for (const [key, old] of this.#cache) {
      if (seen.has(key)) continue;
      this.#delete(key);
      this.#opts.onEvent('delete', old);
    }
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    if (!this.#synced) this.#opts.onFirstSync?.();
    this.#synced = true;
    this.#failures = 0;
    if (this.#absent) {
      this.#absent = false;
      this.#opts.log.info({ kind: this.#opts.type.kind }, 'API served');
      this.#opts.optional?.onServed();
    }
  }

  /** One watch request; resolves when the server ends it normally. */
  #watchOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      };
      this.#endWatch = () => finish();
      const query: Record<string, string | number | boolean> = {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        // Spread reconnects out like client-go (5–10 min).
        timeoutSeconds: Math.floor(300 + Math.random() * 300),
      };
      if (this.#opts.labelSelector) query.labelSelector = this.#opts.labelSelector;
      if (this.#opts.fieldSelector) query.fieldSelector = this.#opts.fieldSelector;
      this.#watch
        .watch(
          this.#path,
          query,
          (phase: string, obj: T & { code?: number; message?: string }) => {
            if (settled) return;
            if (phase === 'ERROR') {
              this.#abort?.abort();
              finish(obj.code === 410 ? new Gone(obj.message) : new Error(`watch error ${obj.code ?? ''}: ${obj.message ?? ''}`));
              return;
            }
            const rv = obj.metadata?.resourceVersion;
            if (rv) this.#resourceVersion = rv;
            if (phase === 'BOOKMARK') return;
            this.#failures = 0;
            this.#apply(phase, obj);
          },
          (err: unknown) => {
            const code = (err as { statusCode?: number } | null)?.statusCode;
            if (code === 410) finish(new Gone('410 Gone'));
            else if (err && (err as Error).name === 'AbortError' && this.#stopping.signal.aborted) finish();
            // The client ends a watch that was silent for 30 s: resume it, that is no failure.
            else if (err && (err as Error).name === 'TimeoutError') finish();
            else finish(err ?? undefined);
          },
        )
        .then((abort) => {
          this.#abort = abort;
          if (this.#stopping.signal.aborted) abort.abort();
        }, finish);
    });
  }

  #apply(phase: string, received: T): void {
    const obj = this.#opts.transform?.(received) ?? received;
    obj.apiVersion ??= this.#opts.type.apiVersion;
    obj.kind ??= this.#opts.type.kind;
    const key = objectKey(obj);
    const old = this.#cache.get(key);
    const kept = this.#opts.keep?.(obj) !== false;
    if (phase === 'DELETED' || !kept) {
      if (kept || old) {
        this.#delete(key);
        this.#opts.onEvent('delete', obj);
      }
      return;
    }
    this.#set(key, obj);
    this.#opts.onEvent(old ? 'update' : 'add', obj, old);
  }
}
