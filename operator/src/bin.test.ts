// The built operator's stack traces name its TypeScript sources (tsc's source
// maps beside operator/dist/), not the compiled JavaScript: bin/rtmpd-operator.js
// turns source maps on. Runs the build (make build, or npx tsc -b), as the e2e suites do.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = resolve(import.meta.dirname, '../bin/rtmpd-operator.js');

describe('the built operator', () => {
  it("prints a crash's stack with the TypeScript sources' files and lines", () => {
    // A kubeconfig that does not exist fails the start uncaught, and Node prints the error with its stack.
    const flags = ['--kubeconfig', '/nonexistent/kubeconfig', '--metrics-bind', '127.0.0.1:0', '--health-bind', '127.0.0.1:0'];
    const run = spawnSync(process.execPath, [bin, ...flags], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('ENOENT');
    const frames = run.stderr.split('\n').filter((line) => line.trim().startsWith('at '));
    expect(frames.filter((frame) => /\/operator\/src\/kube-client\.ts:\d+:\d+\)?$/.test(frame))).toHaveLength(1);
    expect(frames.filter((frame) => frame.includes('/operator/dist/'))).toEqual([]);
  });
});
