// The RtmpServer resource: one zod schema for spec and status. The CRD in
// crds/ is generated from it (crd.ts), the controller parses with it, and the
// README's field reference is printed from it (docs.ts).
import { configDefault, configKeys, configSchema, flagName, type Config, type ConfigKey } from '@flux-rtmpd/rtmpd/config';
import { z } from 'zod';
import { defaultImage } from '../version.ts';

export const group = 'media.fluxiot.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;
export const kind = 'RtmpServer';
export const plural = 'rtmpservers';
export const singular = 'rtmpserver';
export const shortNames = ['rtmp'];

/** CEL rules attached to a schema node (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}
const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

// Kubernetes resource.Quantity: an integer or a string such as 500m, 1Gi, 1.5.
const quantityPattern =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
const quantity = z.union([z.int(), z.string().regex(new RegExp(quantityPattern))]).meta({ 'x-kubernetes-int-or-string': true });
const sizeQuantity = z.string().regex(new RegExp(quantityPattern), 'expected a quantity such as 10Gi');
const port = z.int().min(1).max(65535);
const stringMap = z.record(z.string(), z.string());

// ---- options that come straight from rtmpd's config schema -------------------

/**
 * The operator-facing zod type of one rtmpd option: same range, values and
 * description as rtmpd's schema, but in the typed form a CRD can state (rtmpd
 * also accepts strings from flags and env; a resource holds real numbers and
 * booleans). Throws for an option kind it does not know, so a new kind of
 * option in rtmpd fails the unit tests instead of vanishing from the CRD.
 */
export function rtmpdOption<K extends ConfigKey>(key: K): z.ZodType<Config[K]> {
  const field = configSchema.shape[key];
  let inner: z.core.$ZodType = field;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) {
    inner = inner.def.innerType;
  }
  const description = field.description ?? '';
  let typed: z.ZodType;
  if (inner instanceof z.ZodNumber) {
    let n = inner.isInt ? z.int() : z.number();
    if (inner.minValue !== null && Number.isFinite(inner.minValue) && Math.abs(inner.minValue) < Number.MAX_SAFE_INTEGER)
      n = n.min(inner.minValue);
    if (inner.maxValue !== null && Number.isFinite(inner.maxValue) && Math.abs(inner.maxValue) < Number.MAX_SAFE_INTEGER)
      n = n.max(inner.maxValue);
    typed = n;
  } else if (inner instanceof z.ZodEnum) {
    typed = z.enum(inner.options as [string, ...string[]]);
  } else if (inner instanceof z.ZodString) {
    typed = z.string().min(1);
  } else if (inner instanceof z.ZodUnion && inner.options.some((o) => o instanceof z.ZodBoolean)) {
    typed = z.boolean();
  } else {
    throw new Error(`rtmpd option ${key}: no CRD mapping for ${inner.constructor.name}`);
  }
  return typed.describe(description) as unknown as z.ZodType<Config[K]>;
}

/** An rtmpd option with rtmpd's default, so `kubectl get -o yaml` shows it. */
const rtmpdOptionWithDefault = <K extends ConfigKey>(key: K) => rtmpdOption(key).default(configDefault(key) as never);

/** Options the operator sets itself: the pod's listen addresses and mount paths. */
export const operatorOwnedOptions = ['rtmpBind', 'httpBind', 'storageDir', 'keyframeDir'] as const satisfies readonly ConfigKey[];
/** Options with their own typed field in the spec. */
export const typedOptions = {
  logLevel: 'spec.logLevel',
  recordingEnabled: 'spec.recording.enabled',
  snapshotEnabled: 'spec.snapshot.enabled',
  snapshotIntervalSeconds: 'spec.snapshot.intervalSeconds',
  snapshotWidth: 'spec.snapshot.width',
  snapshotQuality: 'spec.snapshot.quality',
  snapshotKeep: 'spec.snapshot.keep',
} as const satisfies Partial<Record<ConfigKey, string>>;
/** Every other rtmpd option: set through spec.rtmpd, unset means rtmpd's default. */
export const passthroughOptions = configKeys.filter(
  (k) => !(operatorOwnedOptions as readonly string[]).includes(k) && !(k in typedOptions),
);

const passthroughSchema = z.object(
  Object.fromEntries(
    passthroughOptions.map((k) => {
      const o = rtmpdOption(k);
      return [
        k,
        o.optional().describe(`${o.description} (rtmpd flag --${flagName(k)}; unset: rtmpd's default ${JSON.stringify(configDefault(k))})`),
      ];
    }),
  ),
);
const passthroughDescription =
  "rtmpd tuning options without a typed field above, by the camelCase names of rtmpd's config file; unset options keep rtmpd's defaults";

// ---- spec ---------------------------------------------------------------------

const accessMode = z.enum(['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']);
const immutable = (what: string): CelRule => ({ rule: 'self == oldSelf', message: `${what} is immutable` });

const volumeSchema = (what: string, size: string) =>
  z
    .object({
      size: sizeQuantity.default(size).describe(`requested size of the ${what} volume`),
      storageClassName: z
        .string()
        .optional()
        .meta(cel(immutable('storageClassName')))
        .describe('StorageClass of the claim; unset uses the cluster default'),
      accessModes: z
        .array(accessMode)
        .min(1)
        .default(['ReadWriteOnce'])
        .meta(cel(immutable('accessModes')))
        .describe('access modes of the claim; more than one replica needs ReadWriteMany'),
      existingClaim: z
        .string()
        .min(1)
        .optional()
        .describe('use this PersistentVolumeClaim instead of creating one (size, storageClassName and accessModes are then ignored)'),
    })
    .prefault({})
    .describe(`the ${what} volume`);

// Rules also run against the schema's own defaults (e.g. `{}`), before nested
// defaulting: every field they read is guarded with has().
const shared = (v: string) =>
  `has(self.storage.${v}) && (has(self.storage.${v}.existingClaim) || (has(self.storage.${v}.accessModes) && 'ReadWriteMany' in self.storage.${v}.accessModes))`;

export const specSchema = z
  .object({
    image: z.string().min(1).default(defaultImage).describe('rtmpd container image'),
    imagePullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'])
      .default('IfNotPresent')
      .describe('image pull policy of the rtmpd container'),
    replicas: z
      .int()
      .min(0)
      .max(1000)
      .default(1)
      .describe('number of rtmpd pods (also set by the scale subresource, e.g. kubectl scale rtmpserver)'),
    ports: z
      .object({
        rtmp: port.default(1935).describe('RTMP port (container and Service)'),
        http: port.default(8082).describe('HTTP port for the API, HTTP-FLV playback and /metrics (container and Service)'),
      })
      .prefault({})
      .meta(cel({ rule: '!has(self.rtmp) || !has(self.http) || self.rtmp != self.http', message: 'ports.rtmp and ports.http must differ' }))
      .describe('ports rtmpd listens on'),
    service: z
      .object({
        type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP').describe('Service type'),
        annotations: stringMap.optional().describe('annotations of the Service (e.g. for a cloud load balancer)'),
        nodePorts: z
          .object({
            rtmp: z.int().min(30000).max(32767).optional().describe('node port for RTMP'),
            http: z.int().min(30000).max(32767).optional().describe('node port for HTTP'),
          })
          .meta(
            cel({
              rule: '!has(self.rtmp) || !has(self.http) || self.rtmp != self.http',
              message: 'service.nodePorts.rtmp and service.nodePorts.http must differ',
            }),
          )
          .optional()
          .describe('fixed node ports (type NodePort or LoadBalancer only)'),
        loadBalancerSourceRanges: z
          .array(z.string())
          .optional()
          .describe('client CIDRs allowed through the load balancer (type LoadBalancer only)'),
      })
      .prefault({})
      .meta(
        cel(
          {
            rule: "!has(self.nodePorts) || self.type != 'ClusterIP'",
            message: 'service.nodePorts needs service.type NodePort or LoadBalancer',
            fieldPath: '.nodePorts',
          },
          {
            rule: "!has(self.loadBalancerSourceRanges) || self.type == 'LoadBalancer'",
            message: 'service.loadBalancerSourceRanges needs service.type LoadBalancer',
            fieldPath: '.loadBalancerSourceRanges',
          },
        ),
      )
      .describe('the Service in front of the pods'),
    storage: z
      .object({
        recordings: volumeSchema('recordings', '10Gi'),
        keyframes: volumeSchema('keyframes (latest keyframe and JPEG snapshots)', '1Gi'),
        reclaimPolicy: z
          .enum(['Retain', 'Delete'])
          .default('Retain')
          .describe('Delete: the claims the operator created are removed with the RtmpServer; Retain: they are kept'),
      })
      .prefault({})
      .describe('persistent volumes for recordings and keyframes'),
    snapshot: z
      .object({
        enabled: rtmpdOptionWithDefault('snapshotEnabled'),
        intervalSeconds: rtmpdOptionWithDefault('snapshotIntervalSeconds'),
        width: rtmpdOptionWithDefault('snapshotWidth'),
        quality: rtmpdOptionWithDefault('snapshotQuality'),
        keep: rtmpdOptionWithDefault('snapshotKeep'),
      })
      .prefault({})
      .describe('JPEG snapshot policy'),
    recording: z
      .object({ enabled: rtmpdOptionWithDefault('recordingEnabled') })
      .prefault({})
      .describe('recording of published streams as FLV on the recordings volume'),
    resources: z
      .object({
        limits: z.record(z.string(), quantity).optional().describe('resource limits, e.g. cpu: "2", memory: 1Gi'),
        requests: z.record(z.string(), quantity).optional().describe('resource requests'),
      })
      .optional()
      .describe('compute resources of the rtmpd container'),
    nodeSelector: stringMap.optional().describe('node labels the pods must match'),
    tolerations: z
      .array(
        z.object({
          key: z.string().optional(),
          operator: z.enum(['Exists', 'Equal']).optional(),
          value: z.string().optional(),
          effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
          tolerationSeconds: z.int().optional(),
        }),
      )
      .optional()
      .describe('pod tolerations (core/v1 Toleration)'),
    affinity: z
      .record(z.string(), z.unknown())
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .optional()
      .describe('pod affinity (core/v1 Affinity), passed through as written'),
    podAnnotations: stringMap.optional().describe('extra annotations on the pods'),
    logLevel: rtmpdOptionWithDefault('logLevel'),
    otel: z
      .object({
        endpoint: z.url().optional().describe('OTLP endpoint for traces (OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://otel-collector:4318'),
        serviceName: z.string().min(1).default('rtmpd').describe('OTEL_SERVICE_NAME of the pods'),
      })
      .prefault({})
      .describe('OpenTelemetry export'),
    metrics: z
      .object({
        serviceMonitor: z
          .object({
            enabled: z
              .boolean()
              .default(false)
              .describe('create a monitoring.coreos.com/v1 ServiceMonitor (needs the Prometheus Operator CRDs)'),
            interval: z
              .string()
              .regex(/^([0-9]+(ms|s|m|h))+$/)
              .default('30s')
              .describe('scrape interval'),
            labels: stringMap.optional().describe('extra labels on the ServiceMonitor (e.g. to match a Prometheus selector)'),
          })
          .prefault({}),
      })
      .prefault({})
      .describe('Prometheus scraping: pods always carry prometheus.io/* annotations; a ServiceMonitor is optional'),
    rtmpd: passthroughSchema.prefault({}).describe(passthroughDescription),
  })
  .meta(
    cel({
      rule: `!has(self.replicas) || self.replicas <= 1 || (has(self.storage) && ${shared('recordings')} && ${shared('keyframes')})`,
      message: 'more than one replica needs ReadWriteMany storage (or an existingClaim) for both storage.recordings and storage.keyframes',
      fieldPath: '.replicas',
    }),
  )
  .describe('desired state of the rtmpd fleet');

// ---- status -------------------------------------------------------------------

const conditionSchema = z.object({
  type: z.string().describe('Ready, Progressing or Degraded'),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.int().optional(),
  lastTransitionTime: z.string().describe('when status last changed (RFC 3339)'),
  reason: z.string().describe('CamelCase reason'),
  message: z.string().describe('human-readable detail'),
});

export const statusSchema = z
  .object({
    observedGeneration: z.int().optional().describe('the generation the status describes'),
    replicas: z.int().optional().describe('pods of the Deployment'),
    readyReplicas: z.int().optional().describe('ready pods'),
    selector: z.string().optional().describe('label selector of the pods (for the scale subresource / HPA)'),
    conditions: z
      .array(conditionSchema)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe('Ready, Progressing, Degraded (and ServiceMonitorReady when a ServiceMonitor is asked for)'),
    endpoints: z
      .object({
        rtmp: z.string().optional().describe('publish to and play from <rtmp>/<stream key>'),
        httpFlv: z.string().optional().describe('HTTP-FLV playback base URL: append /<stream key>.flv'),
        api: z.string().optional().describe('rtmpd HTTP API base URL (live streams at <api>/rtmp/streams)'),
      })
      .optional()
      .describe('in-cluster URLs to push to and play from'),
  })
  .describe('observed state, written by the operator');

export type RtmpServerSpec = z.infer<typeof specSchema>;
export type RtmpServerSpecInput = z.input<typeof specSchema>;
export type RtmpServerStatus = z.infer<typeof statusSchema>;
export type Condition = z.infer<typeof conditionSchema>;

interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RtmpServer {
  apiVersion: typeof apiVersion;
  kind: typeof kind;
  metadata: ObjectMeta;
  spec: RtmpServerSpec;
  status?: RtmpServerStatus;
}

/** The spec with every default filled in, as the API server stores it. */
export const parseSpec = (spec: unknown): RtmpServerSpec => specSchema.parse(spec ?? {});

/** Root-level CEL: the name becomes a Service name (DNS-1035) and prefixes the PVC names. */
export const rootRules: CelRule[] = [
  {
    rule: "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 50",
    message:
      'metadata.name must be a DNS-1035 label of at most 50 characters (lower case letters, digits, -; starting with a letter): it names the Service and the volume claims',
  },
];

/** The RTMP application name the status endpoints point at. */
export const rtmpApp = 'live';
