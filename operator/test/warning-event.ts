// A Warning Event as a Kubernetes controller records it (core/v1, first and
// last seen now, count 1), for tests and hacks that make the Events the
// operator's status reads.

/** The object an Event is about. */
interface EventSubject {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
}

export interface WarningEvent {
  namespace: string;
  name: string;
  about: EventSubject;
  reason: string;
  message: string;
  /** The controller that records it, e.g. statefulset-controller. */
  component: string;
}

export function warningEvent({ namespace, name, about, reason, message, component }: WarningEvent): object {
  const at = new Date().toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace },
    involvedObject: { ...about, namespace },
    type: 'Warning',
    reason,
    message,
    source: { component },
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}
