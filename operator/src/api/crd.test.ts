import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { crd, crdYaml, openAPISchema } from './crd.ts';

type Json = Record<string, unknown>;

function* nodes(node: Json, path = ''): Generator<[string, Json]> {
  yield [path, node];
  for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Json>)) yield* nodes(v, `${path}.${k}`);
  if (node.items) yield* nodes(node.items as Json, `${path}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    yield* nodes(node.additionalProperties as Json, `${path}{}`);
}

describe('CRD', () => {
  it('names the resource', () => {
    const spec = (crd() as { spec: Json }).spec as { group: string; names: Json; scope: string; versions: Json[] };
    expect(spec.group).toBe('media.fluxiot.io');
    expect(spec.names).toMatchObject({ kind: 'RtmpServer', plural: 'rtmpservers', shortNames: ['rtmp'] });
    expect(spec.scope).toBe('Namespaced');
    const v = spec.versions[0] as Json;
    expect(v).toMatchObject({
      name: 'v1alpha1',
      served: true,
      storage: true,
      subresources: {
        status: {},
        scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
      },
    });
    expect((v.additionalPrinterColumns as Json[]).filter((c) => !c.priority).map((c) => c.name)).toEqual([
      'Ready',
      'Replicas',
      'Streams',
      'RTMP',
      'Age',
    ]);
  });

  it('is a structural schema: typed nodes, no unions but int-or-string, no additionalProperties: false', () => {
    for (const [path, node] of nodes(openAPISchema())) {
      if (node['x-kubernetes-int-or-string']) {
        expect(node.anyOf, path).toEqual([{ type: 'integer' }, { type: 'string' }]);
        continue;
      }
      expect(node.type, `${path} has a type`).toBeDefined();
      expect(node.anyOf ?? node.oneOf ?? node.allOf, path).toBeUndefined();
      expect(node.additionalProperties, path).not.toBe(false);
      if (node.properties && node.additionalProperties) throw new Error(`${path}: properties and additionalProperties`);
      expect(
        Object.keys(node).filter((k) => k.startsWith('$')),
        path,
      ).toEqual([]);
    }
  });

  it('declares defaults on every object whose fields have defaults, so they show up in kubectl get -o yaml', () => {
    const spec = (openAPISchema().properties as Record<string, Json>).spec as Json;
    expect(spec.default).toEqual({});
    const props = spec.properties as Record<string, Json>;
    for (const k of ['ports', 'service', 'storage', 'snapshot', 'recording', 'otel', 'metrics', 'rtmpd'])
      expect(props[k]?.default, k).toEqual({});
  });

  it('states the cross-field rules in CEL', () => {
    const rules = [...nodes(openAPISchema())].flatMap(([, n]) =>
      ((n['x-kubernetes-validations'] ?? []) as { rule: string }[]).map((r) => r.rule),
    );
    expect(rules).toContain('!has(self.rtmp) || !has(self.http) || self.rtmp != self.http');
    expect(rules).toContain('has(self.existingClaim) == has(oldSelf.existingClaim)');
    expect(rules).toContain("!has(self.nodePorts) || self.type != 'ClusterIP'");
    expect(rules).toContain('!has(self.minReplicas) || self.minReplicas <= self.maxReplicas');
  });

  it('describes every field, for kubectl explain and the field reference', () => {
    const schema = openAPISchema() as { properties: Record<string, Json> };
    const undescribed = [...nodes(schema.properties.spec as Json, 'spec'), ...nodes(schema.properties.status as Json, 'status')]
      // fields, not the scalar items of a list or the values of a map
      .filter(([path, node]) => !node.description && !/(\[\]|\{\})$/.test(path))
      .map(([path]) => path);
    expect(undescribed).toEqual([]);
  });

  it('uses the standard condition shape (metav1.Condition)', () => {
    const status = (openAPISchema().properties as Record<string, Json>).status as Json;
    const conditions = (status.properties as Record<string, Json>).conditions as Json;
    expect(conditions).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    const item = conditions.items as { required: string[]; properties: Record<string, Json> };
    expect([...item.required].sort()).toEqual(['lastTransitionTime', 'message', 'reason', 'status', 'type']);
    expect(item.properties.lastTransitionTime).toMatchObject({ type: 'string', format: 'date-time' });
    expect(item.properties.observedGeneration).toMatchObject({ type: 'integer', format: 'int64', minimum: 0 });
    expect(item.properties.reason).toMatchObject({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' });
    expect(item.properties.message).toMatchObject({ maxLength: 32768 });
    expect(item.properties.type).toMatchObject({ maxLength: 316 });
  });

  it("has spec.hls with rtmpd's HLS options and rules per app", () => {
    const spec = (openAPISchema().properties as Record<string, Json>).spec as { properties: Record<string, { properties: Json }> };
    expect(Object.keys(spec.properties.hls!.properties)).toEqual([
      'enabled',
      'lowLatency',
      'variant',
      'segmentSeconds',
      'partSeconds',
      'windowSegments',
      'rules',
    ]);
  });

  it('parses as YAML back to the same object', () => {
    expect(parse(crdYaml())).toEqual(crd());
  });
});
