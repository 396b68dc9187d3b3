import { describe, expect, it } from 'vitest';
import { openAPISchema } from './crd.ts';
import { fieldPaths, missingFields } from './served-schema.ts';

const object = (properties: Record<string, unknown>) => ({ type: 'object', properties });

describe('missingFields', () => {
  it('finds nothing missing in the schema this operator generates', () => {
    expect(missingFields(openAPISchema(), openAPISchema())).toEqual([]);
  });

  it('names a missing object once, not with each of its fields, through lists and maps', () => {
    const expected = object({
      spec: object({
        hls: object({ enabled: { type: 'boolean' } }),
        rules: { type: 'array', items: object({ app: { type: 'string' }, keys: object({ name: { type: 'string' } }) }) },
        labels: { type: 'object', additionalProperties: object({ v: { type: 'string' } }) },
      }),
      status: object({ image: { type: 'string' } }),
    });
    const served = object({
      spec: object({ rules: { type: 'array', items: object({ app: { type: 'string' } }) }, labels: { type: 'object' } }),
      status: object({}),
    });
    expect(missingFields(expected, served)).toEqual(['spec.hls', 'spec.rules[].keys', 'spec.labels{}.v', 'status.image']);
  });

  it('lists every path of the generated schema, nested ones included', () => {
    const paths = fieldPaths(openAPISchema());
    expect(paths).toContain('spec.storage.recordings.storageClassName');
    expect(paths).toContain('status.conditions[].observedGeneration');
  });
});
