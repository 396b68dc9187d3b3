import { expect, it } from 'vitest';
import { ruleFor } from './stream-rules.ts';

it("gives a stream the first rule that matches it, not a later one's", () => {
  const rules = [
    { app: 'live', key: 'cam-*', name: 'cameras' },
    { app: 'live', key: '*', name: 'live' },
  ];
  expect(ruleFor(rules, 'live', 'cam-1')?.name).toBe('cameras');
  expect(ruleFor(rules, 'live', 'studio')?.name).toBe('live');
  expect(ruleFor(rules, 'other', 'cam-1')).toBeUndefined();
});
