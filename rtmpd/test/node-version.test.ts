// rtmpd and the operator started on a Node.js that is too old say so and exit
// 1, before loading anything that would fail in a less telling way. The old
// version is simulated with a preload that rewrites process.versions, so the
// test runs wherever the suite does.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'old-node-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const preload = join(dir, 'node-20.mjs');
writeFileSync(preload, "Object.defineProperty(process.versions, 'node', { value: '20.20.2' });\n");

describe('an unsupported Node.js', () => {
  it.each([
    ['rtmpd', 'rtmpd/bin/rtmpd.js'],
    ['rtmpd-operator', 'operator/bin/rtmpd-operator.js'],
  ])('%s names the version it needs and exits 1', (program, bin) => {
    const r = spawnSync(process.execPath, ['--import', preload, join(repo, bin), '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${program} needs Node.js 24 or newer; this is Node.js 20.20.2.`);
    expect(r.stdout).toBe('');
  });

  it('lets the programs run on this one', () => {
    const r = spawnSync(process.execPath, [join(repo, 'rtmpd/bin/rtmpd.js'), '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^rtmpd \d+\.\d+\.\d+/);
  });
});
