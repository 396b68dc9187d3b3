import { describe, expect, it } from 'vitest';
import { configKeys, envName, flagName } from './config.ts';
import { optionsTable } from './config-docs.ts';

describe('options reference', () => {
  it('lists every option with its flag and environment variable', () => {
    const table = optionsTable();
    for (const key of configKeys) {
      expect(table).toContain(`--${flagName(key)}`);
      expect(table).toContain(envName(key));
    }
  });
});
