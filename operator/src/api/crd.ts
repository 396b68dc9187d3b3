// CRD generation from the zod schema: z.toJSONSchema (OpenAPI 3.0 flavour),
// then trimmed to a Kubernetes structural schema, plus CEL rules, printer
// columns and the status and scale subresources.
import { stringify } from 'yaml';
import { z } from 'zod';
import { group, kind, plural, rootRules, shortNames, singular, specSchema, statusSchema, version } from './rtmpserver.ts';

type Json = Record<string, unknown>;

// Keys a structural schema may carry (everything else zod emits is dropped).
const kept = new Set([
  'type',
  'format',
  'description',
  'default',
  'enum',
  'nullable',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'properties',
  'additionalProperties',
  'items',
  'required',
  'x-kubernetes-validations',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
]);
const safe = Number.MAX_SAFE_INTEGER;

/** One zod JSON-schema node → a structural schema node. */
function structural(node: Json): Json {
  if (node['x-kubernetes-int-or-string'] === true) {
    // The one anyOf a structural schema allows: integer or string, with the
    // string pattern lifted to the top.
    const str = (node.anyOf as Json[] | undefined)?.find((b) => b.type === 'string');
    const out: Json = { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
    if (node.description) out.description = node.description;
    if (str?.pattern) out.pattern = str.pattern;
    if (str?.maxLength !== undefined) out.maxLength = str.maxLength;
    if (node['x-kubernetes-validations']) out['x-kubernetes-validations'] = node['x-kubernetes-validations'];
    return out;
  }
  if (node.anyOf || node.oneOf || node.allOf) throw new Error(`unsupported union in CRD schema: ${JSON.stringify(node).slice(0, 200)}`);
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (!kept.has(key)) continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(value as number) >= safe) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, Json>).map(([k, v]) => [k, structural(v)]));
    } else if (key === 'items') {
      out.items = structural(value as Json);
    } else if (key === 'additionalProperties') {
      if (typeof value === 'object' && value !== null && Object.keys(value).length > 0)
        out.additionalProperties = structural(value as Json);
    } else if (key === 'required') {
      if ((value as string[]).length > 0) out.required = value;
    } else {
      out[key] = value;
    }
  }
  if (out['x-kubernetes-preserve-unknown-fields'] === true) {
    delete out.additionalProperties;
    delete out.properties;
  }
  if (out.type === 'integer' && (out.format === undefined || out.format === 'safeint')) out.format = 'int64';
  return ordered(out);
}

// A stable, readable key order for the generated YAML.
const order = ['type', 'format', 'description', 'default', 'enum'];
const rank = (k: string) =>
  order.includes(k)
    ? order.indexOf(k)
    : k.startsWith('x-kubernetes')
      ? 90
      : k === 'properties' || k === 'items' || k === 'additionalProperties'
        ? 99
        : 50;
function ordered(node: Json): Json {
  return Object.fromEntries(Object.entries(node).sort(([a], [b]) => rank(a) - rank(b)));
}

const toStructural = (schema: z.ZodType): Json =>
  structural(z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw' }) as Json);

/** The OpenAPI v3 schema of the served version. */
export function openAPISchema(): Json {
  return {
    type: 'object',
    description:
      'RtmpServer runs a fleet of rtmpd media servers: a StatefulSet whose pods have their own volumes for recordings and keyframes (or share ReadWriteMany or existing claims), its Services, and a ConfigMap with the rendered rtmpd configuration.',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: { ...toStructural(specSchema), default: {} },
      status: toStructural(statusSchema),
    },
    'x-kubernetes-validations': rootRules,
  };
}

/** The CustomResourceDefinition, as an object. */
export function crd(): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${group}`,
      labels: { 'app.kubernetes.io/name': 'rtmpd-operator', 'app.kubernetes.io/part-of': 'flux-rtmpd' },
    },
    spec: {
      group,
      names: { kind, listKind: `${kind}List`, plural, singular, shortNames, categories: ['flux-rtmpd'] },
      scope: 'Namespaced',
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: openAPISchema() },
          subresources: {
            status: {},
            scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
          },
          additionalPrinterColumns: [
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Replicas', type: 'integer', jsonPath: '.status.readyReplicas', description: 'ready pods' },
            { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas', priority: 1 },
            { name: 'Streams', type: 'integer', jsonPath: '.status.streams', description: 'live streams' },
            { name: 'Players', type: 'integer', jsonPath: '.status.players', description: 'players on all pods', priority: 1 },
            { name: 'RTMP', type: 'string', jsonPath: '.status.endpoints.rtmp' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
        },
      ],
    },
  };
}

const generatedHeader = '# Generated from operator/src/api/rtmpserver.ts by `make generate`; do not edit.\n';

/** The CRD as the YAML committed under crds/ (and copied into the chart). */
export function crdYaml(): string {
  return generatedHeader + stringify(crd(), { lineWidth: 0 });
}

export const crdFileName = `${group}_${plural}.yaml`;
