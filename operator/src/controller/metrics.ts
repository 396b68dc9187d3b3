// The operator's Prometheus metrics, under the names controller-runtime uses
// so existing dashboards and alerts work unchanged.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  activeWorkers: Gauge<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  queue: QueueMetrics;
  leader: Gauge<'name'>;
  /** Secrets read to check what an RtmpServer names (a GET each). */
  secretReads: Counter;
  certificates: CertificateMetrics;
}

/** The notAfter of each RtmpServer's spec.tls certificate, one series per server. */
export interface CertificateMetrics {
  set(namespace: string, rtmpserver: string, secret: string, notAfter: Date): void;
  remove(namespace: string, rtmpserver: string): void;
}

/** What the work queue reports; a no-op implementation keeps the queue usable without Prometheus. */
export interface QueueMetrics {
  depth(n: number): void;
  add(): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
  retry(): void;
  unfinished(seconds: number, longest: number): void;
}

export const noQueueMetrics: QueueMetrics = { depth() {}, add() {}, queued() {}, worked() {}, retry() {}, unfinished() {} };

const buckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5,
  5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
const queueBuckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];

export function createMetrics(controller: string): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    ...reconcileMetrics(controller, registers),
    leader: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'] as const,
      registers,
    }),
    queue: workqueueMetrics(controller, registers),
    secretReads: new Counter({
      name: 'rtmpd_operator_secret_reads_total',
      help: 'Secrets read (GET) to check what an RtmpServer names; a Secret is read again only when its resourceVersion changed',
      registers,
    }),
    certificates: certificateMetrics(registers),
  };
}

/** As cert-manager's certmanager_certificate_expiration_timestamp_seconds, per RtmpServer; a server's series goes with it or its spec.tls. */
function certificateMetrics(registers: Registry[]): CertificateMetrics {
  const gauge = new Gauge({
    name: 'rtmpd_operator_certificate_expiration_timestamp_seconds',
    help: "The notAfter time of the certificate in an RtmpServer's spec.tls Secret, in seconds since the epoch",
    labelNames: ['namespace', 'rtmpserver', 'secret'] as const,
    registers,
  });
  const secretOf = new Map<string, string>();
  const remove = (namespace: string, rtmpserver: string) => {
    const secret = secretOf.get(`${namespace}/${rtmpserver}`);
    if (secret === undefined) return;
    gauge.remove({ namespace, rtmpserver, secret });
    secretOf.delete(`${namespace}/${rtmpserver}`);
  };
  return {
    set: (namespace, rtmpserver, secret, notAfter) => {
      if (secretOf.get(`${namespace}/${rtmpserver}`) !== secret) remove(namespace, rtmpserver);
      secretOf.set(`${namespace}/${rtmpserver}`, secret);
      gauge.set({ namespace, rtmpserver, secret }, notAfter.getTime() / 1000);
    },
    remove,
  };
}

/** controller-runtime's reconcile metrics of `controller`, its counters at 0 from the start, as there. */
function reconcileMetrics(controller: string, registers: Registry[]) {
  const reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'] as const,
    registers,
  });
  const reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'] as const,
    registers,
  });
  const reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'] as const,
    buckets,
    registers,
  });
  const activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'] as const,
    registers,
  });
  const maxConcurrentReconciles = new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'] as const,
    registers,
  });
  for (const result of ['success', 'error', 'requeue', 'requeue_after']) reconcileTotal.inc({ controller, result }, 0);
  reconcileErrors.inc({ controller }, 0);
  return { reconcileTotal, reconcileErrors, reconcileTime, activeWorkers, maxConcurrentReconciles };
}

/** client-go's work queue metrics, named for `controller` as controller-runtime names them, its counters at 0 from the start. */
function workqueueMetrics(controller: string, registers: Registry[]): QueueMetrics {
  const labels = { name: controller, controller };
  const labelNames = ['name', 'controller'] as const;
  const depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, registers });
  const adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames, registers });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames,
    buckets: queueBuckets,
    registers,
  });
  const workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames,
    buckets: queueBuckets,
    registers,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames,
    registers,
  });
  const unfinished = new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
    labelNames,
    registers,
  });
  const longest = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running',
    labelNames,
    registers,
  });
  depth.set(labels, 0);
  adds.inc(labels, 0);
  retries.inc(labels, 0);
  return {
    depth: (n) => depth.set(labels, n),
    add: () => adds.inc(labels),
    queued: (s) => queueDuration.observe(labels, s),
    worked: (s) => workDuration.observe(labels, s),
    retry: () => retries.inc(labels),
    unfinished: (s, l) => {
      unfinished.set(labels, s);
      longest.set(labels, l);
    },
  };
}
