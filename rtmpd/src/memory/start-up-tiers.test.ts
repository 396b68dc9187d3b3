// Whether a hot function gets optimized is V8's to say (%GetOptimizationStatus,
// with --allow-natives-syntax), so each case runs in a Node of its own.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { START_UP_FLAGS } from './start-up-tiers.ts';

/** V8's OptimizationStatus bit for a function running optimized code. */
const OPTIMIZED = 16;

function optimizationStatus(flags: string[]): { enabled: boolean; status: number } {
  const script = `
    import { enableCompilerTiers } from ${JSON.stringify(new URL('./start-up-tiers.ts', import.meta.url).href)};
    const enabled = enableCompilerTiers();
    function sum(values) { let s = 0; for (let i = 0; i < values.length; i++) s += values[i]; return s; }
    const values = new Array(1000).fill(1);
    for (let i = 0; i < 10000; i++) sum(values);
    console.log(JSON.stringify({ enabled, status: %GetOptimizationStatus(sum) }));`;
  const r = spawnSync(process.execPath, [...flags, '--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { enabled: boolean; status: number };
}

describe('enableCompilerTiers', () => {
  it('switches the optimizing tiers on after a start with START_UP_FLAGS', () => {
    const { enabled, status } = optimizationStatus(START_UP_FLAGS);
    expect(enabled).toBe(true);
    expect(status & OPTIMIZED).toBe(OPTIMIZED);
  });

  it('leaves the tiers off for a process started with only some of the flags', () => {
    const { enabled, status } = optimizationStatus(['--no-opt', '--no-maglev']);
    expect(enabled).toBe(false);
    expect(status & OPTIMIZED).toBe(0);
  });
});
