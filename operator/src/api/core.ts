// The core/v1 shapes an RtmpServer spec embeds (quantities, label maps,
// tolerations, affinity, security contexts, probe timings), typed and checked
// as the API server checks them on a Pod, so a mistake is refused when the
// RtmpServer is applied instead of when a pod is created from it.
import { z } from 'zod';

/** CEL rules attached to a schema node (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}
export const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

// Bounds that keep the API server's CEL cost estimates finite.
const maxEntries = 64;
const maxKeyLength = 317;

// Kubernetes resource.Quantity, not negative: an integer or a string such as 500m, 1Gi, 1.5.
const quantityPattern = '^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
const quantity = z
  .union([z.int().min(0), z.string().max(64).regex(new RegExp(quantityPattern))])
  .meta({
    'x-kubernetes-int-or-string': true,
    ...cel({ rule: 'type(self) != int || self >= 0', message: 'a quantity may not be negative' }),
  })
  .describe('a quantity: an integer, or a string such as 500m, 1.5 or 10Gi');

/** A number, or a percentage such as 25% (a PodDisruptionBudget's maxUnavailable). */
export const intOrPercent = z
  .union([
    z.int().min(0),
    z
      .string()
      .max(8)
      .regex(/^[0-9]+%$/),
  ])
  .meta({ 'x-kubernetes-int-or-string': true, ...cel({ rule: 'type(self) != int || self >= 0', message: 'may not be negative' }) })
  .describe('a number, or a percentage such as 25%');

/** A volume size: a quantity above zero. */
export const size = (fallback: string, what: string) =>
  z
    .string()
    .max(64)
    .regex(new RegExp(quantityPattern), 'expected a quantity such as 10Gi')
    .default(fallback)
    .meta(cel({ rule: "quantity(self).isGreaterThan(quantity('0'))", message: `${what} must be larger than zero` }))
    .describe(
      `requested size of each ${what} claim, e.g. 10Gi; a larger size expands existing claims (the StorageClass must allow volume expansion), a smaller one is refused by the API server`,
    );

// A label or annotation key: an optional DNS subdomain prefix and a name of at most 63 characters.
const qualifiedName = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const labelValue = '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$';
const keysRule = (what: string): CelRule => ({
  rule: `self.all(k, size(k) <= 253 && k.matches('${qualifiedName}'))`,
  message: `${what} keys must be qualified names: an optional DNS subdomain and '/', then at most 63 of A-Z a-z 0-9 - _ . starting and ending alphanumeric`,
});

/** Annotations: qualified keys, any values. */
export const annotations = (description: string) =>
  z
    .record(z.string().max(maxKeyLength), z.string())
    .meta({ maxProperties: maxEntries, ...cel(keysRule('annotation')) })
    .describe(description);

/** Labels (or a node selector): qualified keys, label values. */
export const labels = (description: string) =>
  z
    .record(z.string().max(maxKeyLength), z.string().max(63).regex(new RegExp(labelValue), 'expected a label value'))
    .meta({ maxProperties: maxEntries, ...cel(keysRule('label')) })
    .describe(description);

const knownResource = "k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-') || k.contains('/')";
const resourceList = (description: string) =>
  z
    .record(z.string().max(maxKeyLength), quantity)
    .meta({
      maxProperties: 16,
      ...cel({
        rule: `self.all(k, ${knownResource})`,
        message: 'resource names are cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource such as example.com/gpu',
      }),
    })
    .describe(description);

export const resources = z
  .object({
    limits: resourceList('upper bounds, e.g. memory: 1Gi').optional(),
    requests: resourceList('what the scheduler reserves, e.g. cpu: 250m, memory: 256Mi').optional(),
  })
  .meta(
    cel({
      rule: '!has(self.limits) || !has(self.requests) || self.requests.all(k, !(k in self.limits) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)',
      message: 'a resource request may not exceed its limit',
    }),
  );

export const toleration = z
  .object({
    key: z
      .string()
      .max(maxKeyLength)
      .regex(new RegExp(qualifiedName), 'expected a taint key (a qualified name)')
      .optional()
      .describe('taint key; empty with operator Exists matches every taint'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Equal (default) matches key and value; Exists matches the key alone'),
    value: z
      .string()
      .max(63)
      .regex(new RegExp(labelValue), 'expected a label value')
      .optional()
      .describe('taint value to match with operator Equal'),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .describe('taint effect to match; empty matches every effect'),
    tolerationSeconds: z.int().min(0).optional().describe('with effect NoExecute: how long the pod stays bound after the taint appears'),
  })
  .meta(
    cel(
      {
        rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: 'a toleration with operator Exists takes no value',
      },
      {
        rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        message: 'a toleration without a key needs operator Exists',
      },
      {
        rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message: 'tolerationSeconds needs effect NoExecute',
      },
    ),
  )
  .describe('a core/v1 Toleration');

const stringList = (description: string) => z.array(z.string().max(maxKeyLength)).max(maxEntries).describe(description);

const nodeSelectorRequirement = z
  .object({
    key: z.string().min(1).max(maxKeyLength).describe('node label (or field) key'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']).describe('how the values are matched'),
    values: stringList('values: one or more for In and NotIn, none for Exists and DoesNotExist, one integer for Gt and Lt').optional(),
  })
  .meta(
    cel(
      {
        rule: "self.operator in ['Exists', 'DoesNotExist'] ? !has(self.values) || size(self.values) == 0 : has(self.values) && size(self.values) > 0",
        message: 'In, NotIn, Gt and Lt need values; Exists and DoesNotExist take none',
      },
      {
        rule: "!(self.operator in ['Gt', 'Lt']) || (size(self.values) == 1 && self.values[0].matches('^-?[0-9]+$'))",
        message: 'Gt and Lt take one integer value',
      },
    ),
  )
  .describe('a node selector requirement');

const nodeSelectorTerm = z
  .object({
    matchExpressions: z.array(nodeSelectorRequirement).max(maxEntries).optional().describe("requirements on the node's labels"),
    matchFields: z.array(nodeSelectorRequirement).max(maxEntries).optional().describe("requirements on the node's fields (metadata.name)"),
  })
  .describe('a node selector term: every requirement must hold');

const labelSelectorRequirement = z
  .object({
    key: z.string().min(1).max(maxKeyLength).describe('label key'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('how the values are matched'),
    values: stringList('values: one or more for In and NotIn, none for Exists and DoesNotExist').optional(),
  })
  .meta(
    cel({
      rule: "self.operator in ['Exists', 'DoesNotExist'] ? !has(self.values) || size(self.values) == 0 : has(self.values) && size(self.values) > 0",
      message: 'In and NotIn need values; Exists and DoesNotExist take none',
    }),
  )
  .describe('a label selector requirement');

const labelSelector = z
  .object({
    matchLabels: labels('labels that must match exactly').optional(),
    matchExpressions: z.array(labelSelectorRequirement).max(maxEntries).optional().describe('requirements on labels'),
  })
  .describe('a label selector');

const podAffinityTerm = z
  .object({
    labelSelector: labelSelector.optional(),
    namespaceSelector: labelSelector.optional(),
    namespaces: stringList("namespaces the labelSelector applies to; empty: the pod's own").optional(),
    topologyKey: z.string().min(1).max(maxKeyLength).describe('node label whose values define a domain, e.g. kubernetes.io/hostname'),
    matchLabelKeys: stringList('pod label keys whose values are taken from the incoming pod').optional(),
    mismatchLabelKeys: stringList("pod label keys whose values must differ from the incoming pod's").optional(),
  })
  .describe('pods (by labels and namespaces) the pod is placed with, or away from, within a topology domain');

const weight = z.int().min(1).max(100).describe('preference weight, 1 to 100');
const weightedPodAffinityTerm = z.object({ weight, podAffinityTerm }).describe('a weighted pod affinity term');
const preferredSchedulingTerm = z.object({ weight, preference: nodeSelectorTerm }).describe('a weighted node selector term');

const podAffinity = (what: string) =>
  z
    .object({
      requiredDuringSchedulingIgnoredDuringExecution: z
        .array(podAffinityTerm)
        .max(maxEntries)
        .optional()
        .describe(`terms every placement must meet (${what})`),
      preferredDuringSchedulingIgnoredDuringExecution: z
        .array(weightedPodAffinityTerm)
        .max(maxEntries)
        .optional()
        .describe(`terms the scheduler prefers (${what})`),
    })
    .describe(`pod ${what} (core/v1)`);

export const affinity = z
  .object({
    nodeAffinity: z
      .object({
        requiredDuringSchedulingIgnoredDuringExecution: z
          .object({ nodeSelectorTerms: z.array(nodeSelectorTerm).min(1).max(maxEntries).describe('any one term must match') })
          .optional()
          .describe('nodes the pod may run on'),
        preferredDuringSchedulingIgnoredDuringExecution: z
          .array(preferredSchedulingTerm)
          .max(maxEntries)
          .optional()
          .describe('nodes the scheduler prefers'),
      })
      .optional()
      .describe('node affinity (core/v1)'),
    podAffinity: podAffinity('affinity').optional(),
    podAntiAffinity: podAffinity('anti-affinity').optional(),
  })
  .describe('pod affinity (core/v1 Affinity); set, it replaces the default spread of replicas over nodes');

export const topologySpreadConstraint = z
  .object({
    maxSkew: z.int().min(1).describe('how unevenly the pods may be spread'),
    topologyKey: z.string().min(1).max(maxKeyLength).describe('node label whose values define a domain, e.g. topology.kubernetes.io/zone'),
    whenUnsatisfiable: z.enum(['DoNotSchedule', 'ScheduleAnyway']).describe('DoNotSchedule: a hard rule; ScheduleAnyway: a preference'),
    minDomains: z.int().min(1).optional().describe('with DoNotSchedule: the number of eligible domains'),
    labelSelector: labelSelector.optional().describe("pods counted in a domain; unset: this RtmpServer's pods"),
  })
  .meta(
    cel({
      rule: "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
      message: 'minDomains needs whenUnsatisfiable DoNotSchedule',
    }),
  )
  .describe('a core/v1 TopologySpreadConstraint');

const seccompProfile = z
  .object({
    type: z.enum(['RuntimeDefault', 'Localhost', 'Unconfined']).describe('RuntimeDefault, Localhost or Unconfined'),
    localhostProfile: z.string().min(1).optional().describe('with type Localhost: the profile file on the node'),
  })
  .meta(
    cel({
      rule: "(self.type == 'Localhost') == has(self.localhostProfile)",
      message: 'localhostProfile is needed with type Localhost, and only then',
    }),
  )
  .describe('seccomp profile');

const id = (what: string) => z.int().min(0).max(2147483647).describe(what);

export const podSecurityContext = z
  .object({
    runAsUser: id('UID the containers run as').optional(),
    runAsGroup: id('primary GID of the containers').optional(),
    runAsNonRoot: z.boolean().optional().describe('refuse to start a container that would run as root'),
    fsGroup: id('GID that owns the volumes, so the containers can write them').optional(),
    fsGroupChangePolicy: z.enum(['OnRootMismatch', 'Always']).optional().describe('when volume ownership is changed to fsGroup'),
    supplementalGroups: z.array(id('a GID')).max(32).optional().describe('extra GIDs of the containers'),
    seccompProfile: seccompProfile.optional(),
  })
  .describe('pod security context (core/v1 PodSecurityContext); merged over the restricted defaults');

export const securityContext = z
  .object({
    runAsUser: id('UID the container runs as').optional(),
    runAsGroup: id('primary GID of the container').optional(),
    runAsNonRoot: z.boolean().optional().describe('refuse to start the container as root'),
    readOnlyRootFilesystem: z
      .boolean()
      .optional()
      .describe('mount the root filesystem read-only (rtmpd writes only to its volumes and /tmp)'),
    allowPrivilegeEscalation: z.boolean().optional().describe('let a process gain more privileges than its parent'),
    privileged: z.boolean().optional().describe('run the container privileged'),
    capabilities: z
      .object({
        add: stringList('capabilities to add, e.g. NET_BIND_SERVICE').optional(),
        drop: stringList('capabilities to drop, e.g. ALL').optional(),
      })
      .optional()
      .describe('Linux capabilities'),
    seccompProfile: seccompProfile.optional(),
  })
  .describe('container security context (core/v1 SecurityContext); merged over the restricted defaults');

const probeTimings = {
  initialDelaySeconds: z.int().min(0).max(3600).optional().describe('seconds before the first probe'),
  periodSeconds: z.int().min(1).max(3600).optional().describe('seconds between probes'),
  timeoutSeconds: z.int().min(1).max(3600).optional().describe('seconds a probe may take'),
  failureThreshold: z.int().min(1).max(1000).optional().describe('failures in a row that count'),
};
const probeTiming = (what: string) => z.object(probeTimings).describe(what);

export const probes = z
  .object({
    startup: probeTiming('startup probe (GET /health) timings: other probes wait until it succeeds').optional(),
    liveness: z
      .object({
        ...probeTimings,
        port: z
          .enum(['health', 'http'])
          .default('health')
          .describe(
            "the port that answers: health (spec.ports.health, rtmpd's --health-bind) answers from a thread of its own, so a pod whose event loop is busy for seconds (a join storm) stays alive, for about 7 MiB of RSS per pod; http answers in the event loop that serves the clients, without that thread and its port, and a busy loop can answer late enough to restart the pod",
          ),
      })
      .describe('liveness probe (GET /health): the port that answers it, and its timings; failing restarts the container')
      .optional(),
    readiness: probeTiming(
      'readiness probe (GET /ready, 503 once rtmpd drains) timings: failing takes the pod out of the Service',
    ).optional(),
  })
  .describe('probe timings, each merged over the defaults, and the port the liveness probe asks');

/** A DNS-1123 subdomain, e.g. a PersistentVolumeClaim name. */
export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
      'expected a DNS-1123 subdomain (lower case letters, digits, - and .)',
    )
    .describe(description);
