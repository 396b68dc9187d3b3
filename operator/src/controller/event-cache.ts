// The Events the status's causes read (causes.ts eventSelectors), cached per
// watched namespace. They reconcile the RtmpServer that owns the StatefulSet or
// claim they are about: a StatefulSet that cannot create its first pod may
// record its FailedCreate after the last change of any object the operator
// watches. Anyone who may create Events (or make a controller record them,
// e.g. with unbound claims) can match those selectors: the cache keeps an
// Event only if its object can be an RtmpServer's (ServerReferences.mayBeChild),
// and of it only a summary whose every field is bounded.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { eventSelectors, maxEventMessage, maxEventReason, type EventView } from './causes.ts';
import { Informer, type ResourceType } from './informer.ts';
import type { ServerReferences } from './references.ts';

const events: ResourceType = { apiVersion: 'v1', kind: 'Event', plural: 'events' };
type CachedEvent = KubernetesObject & EventView;

const clipped = (text: string | undefined, max: number): string | undefined =>
  text !== undefined && text.length > max ? `${text.slice(0, max)}…` : text;

/** Of an Event, only what causes.ts reads (EventView), its reason and message clipped, and its name and version. */
const eventSummary = (o: KubernetesObject): KubernetesObject => {
  const { metadata, type, reason, message, involvedObject, lastTimestamp, eventTime } = o as CachedEvent;
  const { name, namespace, resourceVersion } = metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace, resourceVersion },
    type,
    reason: clipped(reason, maxEventReason),
    message: clipped(message, maxEventMessage),
    involvedObject: { kind: involvedObject?.kind, name: involvedObject?.name },
    lastTimestamp,
    eventTime,
  } as CachedEvent;
};

const aboutKey = (namespace: string, kind: string, name: string): string => `${namespace}/${kind}/${name}`;
/** The object an Event is about; an Event is always in its object's namespace. */
const eventAbout = (o: KubernetesObject): string => {
  const { involvedObject } = o as CachedEvent;
  return aboutKey(o.metadata?.namespace ?? '', involvedObject?.kind ?? '', involvedObject?.name ?? '');
};

export interface EventCacheOptions {
  kubeConfig: KubeConfig;
  /** One namespace; all when unset. */
  namespace?: string;
  /** The servers whose children's Events are kept. */
  references: ServerReferences;
  log: Logger;
  /** An Event about this object was added, changed or deleted. */
  onEvent: (namespace: string, kind: string, name: string) => void;
}

export class EventCache {
  /** One per selector (the API server's field selectors have no "or"). */
  readonly informers: readonly Informer<KubernetesObject>[];

  /**
   * Start it once `references` knows the servers of its namespace (their
   * informer has synced): an Event it does not keep is not looked at again
   * until it changes. Servers made later have no children yet, except one
   * naming an existing claim, whose older Events count from their next repeat.
   */
  constructor(opts: EventCacheOptions) {
    const { kubeConfig, namespace, references, log, onEvent } = opts;
    this.informers = eventSelectors.map(
      (fieldSelector) =>
        new Informer<KubernetesObject>({
          kubeConfig,
          type: events,
          namespace,
          fieldSelector,
          transform: eventSummary,
          keep: (o) => references.mayBeChild(o.metadata?.namespace ?? '', (o as CachedEvent).involvedObject?.name ?? ''),
          indexBy: eventAbout,
          log,
          onEvent: (_, o) => {
            const { involvedObject } = o as CachedEvent;
            onEvent(o.metadata?.namespace ?? '', involvedObject?.kind ?? '', involvedObject?.name ?? '');
          },
        }),
    );
  }

  /** The cached Events about that object. */
  about(namespace: string, kind: string, name: string): EventView[] {
    return this.informers.flatMap((i) => i.byIndex(aboutKey(namespace, kind, name))) as EventView[];
  }
}
