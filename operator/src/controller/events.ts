// Events about an RtmpServer, recorded as client-go's recorder does: the first
// occurrence creates a core/v1 Event, a repeat of the same type, reason and
// message about the same object raises that Event's count instead of adding
// another. The reconcile is given a recorder, so tests can hand it their own.
import { ApiException, PatchStrategy, setHeaderOptions, type CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  event(about: KubernetesObject, type: EventType, reason: string, message: string): Promise<void>;
}

export interface ApiEventRecorderOptions {
  core: CoreV1Api;
  /** source.component and reportingComponent. */
  component: string;
  /** reportingInstance: this process. */
  instance: string;
  log: Logger;
  now?: () => Date;
  /** Distinct events remembered for aggregation (client-go: 4096). */
  maxTracked?: number;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const maxMessage = 1024;

export class ApiEventRecorder implements EventRecorder {
  readonly #o: ApiEventRecorderOptions;
  /** Aggregation key → the Event that carries it (insertion order is recency). */
  readonly #recorded = new Map<string, { name: string; count: number }>();

  constructor(opts: ApiEventRecorderOptions) {
    this.#o = opts;
  }

  async event(about: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const { name = '', namespace = '', uid = '' } = about.metadata ?? {};
    const text = message.slice(0, maxMessage);
    const key = `${uid}\u0000${type}\u0000${reason}\u0000${text}`;
    const now = this.#o.now?.() ?? new Date();
    try {
      const seen = this.#recorded.get(key);
      if (seen && (await this.#repeat(namespace, seen, now))) {
        this.#remember(key, seen);
        return;
      }
      const created = await this.#o.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: {
            apiVersion: about.apiVersion,
            kind: about.kind,
            name,
            namespace,
            uid,
            resourceVersion: about.metadata?.resourceVersion,
          },
          type,
          reason,
          message: text,
          source: { component: this.#o.component },
          reportingComponent: this.#o.component,
          reportingInstance: this.#o.instance.slice(0, 128),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.#remember(key, { name: created.metadata?.name ?? '', count: 1 });
    } catch (err) {
      this.#o.log.warn({ err, reason }, 'recording an Event failed');
    }
  }

  /** Raises the count of an Event already recorded; false when it is gone (Events expire). */
  async #repeat(namespace: string, seen: { name: string; count: number }, now: Date): Promise<boolean> {
    try {
      await this.#o.core.patchNamespacedEvent(
        { name: seen.name, namespace, body: { count: seen.count + 1, lastTimestamp: now.toISOString() } },
        mergePatch,
      );
      seen.count++;
      return true;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return false;
      throw err;
    }
  }

  #remember(key: string, event: { name: string; count: number }): void {
    this.#recorded.delete(key);
    this.#recorded.set(key, event);
    if (this.#recorded.size > (this.#o.maxTracked ?? 4096)) this.#recorded.delete(this.#recorded.keys().next().value as string);
  }
}
