import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configKeys, envName, flagName } from './config.ts';
import { optionsTable, withOptionsTable } from './config-docs.ts';

const readmePath = new URL('../../README.md', import.meta.url);

describe('options reference', () => {
  it('lists every option with its flag and environment variable', () => {
    const table = optionsTable();
    for (const key of configKeys) {
      expect(table).toContain(`--${flagName(key)}`);
      expect(table).toContain(envName(key));
    }
  });

  it('is current in the README (run `make docs` after changing an option)', () => {
    const readme = readFileSync(readmePath, 'utf8');
    expect(withOptionsTable(readme)).toBe(readme);
  });
});
