import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeCommandLine, nodeEnvironment, RTMPD_MALLOC_ENV, RTMPD_NODE_FLAGS } from './node-flags.ts';

describe('nodeEnvironment', () => {
  it("adds rtmpd's malloc settings to the environment, whose own settings win", () => {
    expect(nodeEnvironment({ PATH: '/bin' })).toEqual({ PATH: '/bin', ...RTMPD_MALLOC_ENV });
    expect(nodeEnvironment({ MALLOC_MMAP_THRESHOLD_: '65536' })).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
  });
});

describe('nodeCommandLine', () => {
  it("puts rtmpd's flags first, then Node's own, then RTMPD_NODE_FLAGS, then the script and its arguments", () => {
    const line = nodeCommandLine('/bin/node', ['--trace-warnings'], ['/bin/node', '/app/rtmpd.js', '--version'], {
      RTMPD_NODE_FLAGS: ' --max-semi-space-size=16   --opt ',
    });
    expect(line).toEqual([
      '/bin/node',
      ...RTMPD_NODE_FLAGS,
      '--trace-warnings',
      '--max-semi-space-size=16',
      '--opt',
      '/app/rtmpd.js',
      '--version',
    ]);
  });

  it('leaves a process that starts with them as it is', () => {
    expect(nodeCommandLine('/bin/node', [...RTMPD_NODE_FLAGS, '--opt'], ['/bin/node', '/app/rtmpd.js'], {})).toBeUndefined();
  });
});

// The built bin, as `make run`, the bench and the image start it.
const bin = resolve(import.meta.dirname, '../../bin/rtmpd.js');
const built = spawnSync(process.execPath, [bin, '--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'node-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bin/rtmpd.js', () => {
  // Not a skip: `make test` builds first, so a bin that does not start here is a broken build.
  beforeAll(() => {
    if (!built) throw new Error('rtmpd/bin/rtmpd.js does not start (rtmpd/dist/bundle missing?): run make build first');
  });
  it('restarts itself in place with the flags, RTMPD_NODE_FLAGS last, and the malloc settings', () => {
    // Runs in each Node the bin starts: both lines must show one pid.
    const preload = join(dir, 'report.mjs');
    writeFileSync(
      preload,
      'process.stderr.write(JSON.stringify([process.pid, process.execArgv, process.env.MALLOC_MMAP_THRESHOLD_ ?? null]) + "\\n");\n',
    );
    const r = spawnSync(process.execPath, [bin, '--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--import ${preload}`, RTMPD_NODE_FLAGS: '--max-semi-space-size=2' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^rtmpd \d+\.\d+\.\d+/);
    const starts = r.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as [number, string[], string | null]);
    expect(starts).toEqual([
      [starts[0]![0], [], null],
      [starts[0]![0], [...RTMPD_NODE_FLAGS, '--max-semi-space-size=2'], RTMPD_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_],
    ]);
  });
});

describe('nodeCommandLine, restarted', () => {
  it('restarts a process that starts with only some of the flags, with all of them', () => {
    const [first] = RTMPD_NODE_FLAGS;
    const line = nodeCommandLine('/bin/node', [first!, '--trace-warnings'], ['/bin/node', '/app/rtmpd.js'], {});
    expect(line).toEqual(['/bin/node', ...RTMPD_NODE_FLAGS, first, '--trace-warnings', '/app/rtmpd.js']);
  });
});
