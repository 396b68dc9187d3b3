// A port already taken ends rtmpd and the operator with one line that names
// the option to change, not an uncaught exception and a stack trace; so does a
// directory rtmpd cannot create.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLogLines, serverArgs } from './support/processes.ts';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'port-in-use-'));
/** rtmpd's directories where a test does not make one of them unusable. */
const usableDirs = { storage: join(dir, 'storage'), keyframes: join(dir, 'keyframes') };
let taken: Server;
let busy: string;

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  busy = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
});
afterAll(() => {
  taken.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a program to its exit (killed after 20 s: one that should have refused to start must not outlive the test); what it printed, and how it ended. */
function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) =>
    child.once('close', (code) => done({ code, stdout, stderr })),
  );
}

describe('a port already in use', () => {
  it.each(['rtmp-bind', 'http-bind'])('ends rtmpd with one line naming --%s', async (option) => {
    const binds = { 'rtmp-bind': '127.0.0.1:0', 'http-bind': '127.0.0.1:0', [option]: busy };
    const { code, stdout, stderr } = await run(serverArgs(usableDirs, [], { rtmp: binds['rtmp-bind']!, http: binds['http-bind']! }));
    expect(code).toBe(1);
    const fatal = errorLogLines(stdout);
    expect(fatal).toEqual([expect.objectContaining({ msg: `cannot listen on ${busy} (--${option}): the address is already in use` })]);
    expect(fatal[0]!.err).toBeUndefined();
    expect(stderr).toBe('');
  });

  it('ends rtmpd with one line naming --health-bind, its worker stopped', async () => {
    const { code, stdout, stderr } = await run(serverArgs(usableDirs, ['--health-bind', busy]));
    expect(code).toBe(1);
    expect(errorLogLines(stdout)).toEqual([
      expect.objectContaining({ msg: `cannot listen on ${busy} (--health-bind): the address is already in use` }),
    ]);
    expect(stderr).toBe('');
  });

  it.each(['storage-dir', 'keyframe-dir'])('ends rtmpd with one line naming a --%s it cannot create, exit 2', async (option) => {
    const notADir = join(dir, 'a-file');
    writeFileSync(notADir, '');
    const dirs = { 'storage-dir': join(dir, 'storage'), 'keyframe-dir': join(dir, 'keyframes'), [option]: join(notADir, 'x') };
    const { code, stdout } = await run(
      serverArgs({ storage: dirs['storage-dir']!, keyframes: dirs['keyframe-dir']! }, ['--recording-enabled', 'true']),
    );
    expect(code).toBe(2);
    const fatal = errorLogLines(stdout);
    expect(fatal).toEqual([expect.objectContaining({ msg: `--${option} ${join(notADir, 'x')}: cannot create it (ENOTDIR)` })]);
    expect(fatal[0]!.err).toBeUndefined();
  });

  // Node's recursive mkdir never returned under /proc (its mkdir answers ENOENT with the parent there).
  it.each([
    ['/proc', 'proc'],
    ['/sys', 'sysfs'],
  ])('ends rtmpd with one line when --storage-dir is under %s, a kernel file system, exit 2', async (root, type) => {
    const storage = join(root, 'rtmpd-recordings', 'live');
    const { code, stdout } = await run(serverArgs({ ...usableDirs, storage }));
    expect(code).toBe(2);
    expect(errorLogLines(stdout)).toEqual([
      expect.objectContaining({
        msg: `--storage-dir ${storage}: ${root} is a ${type} file system, kernel state, not storage; choose a directory on a disk or a volume`,
      }),
    ]);
  });

  it.each(['metrics-bind', 'health-bind'])('ends the operator with one line naming --%s', async (flag) => {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const binds = { 'metrics-bind': '127.0.0.1:0', 'health-bind': '127.0.0.2:0', [flag]: busy };
    const { code, stderr } = await run([
      '--conditions=source',
      join(repo, 'operator/src/main.ts'),
      '--kubeconfig',
      kubeconfig,
      '--metrics-bind',
      binds['metrics-bind']!,
      '--health-bind',
      binds['health-bind']!,
    ]);
    expect(code).toBe(1);
    expect(stderr).toBe(`rtmpd-operator: cannot listen on ${busy} (--${flag}): the address is already in use\n`);
  });
});

describe('start-up checks of rtmpd', () => {
  it('ends rtmpd, exit 2, on a --storage-dir it cannot create when only a recording rule turns recording on', async () => {
    const notADir = join(dir, 'not-a-dir');
    writeFileSync(notADir, '');
    const { code, stdout } = await run(
      serverArgs({ ...usableDirs, storage: join(notADir, 'x') }, [
        '--recording-enabled',
        'false',
        '--recording-rules',
        JSON.stringify([{ app: 'archive', enabled: true }]),
      ]),
    );
    expect(code).toBe(2);
    expect(errorLogLines(stdout)).toEqual([
      expect.objectContaining({ msg: `--storage-dir ${join(notADir, 'x')}: cannot create it (ENOTDIR)` }),
    ]);
  });

  it.each(['--metrics-access', '--api-read-access'])(
    'ends rtmpd, exit 2, on %s token without --api-token-file: an invalid configuration naming both, as a reload refuses it',
    async (flag) => {
      const { code, stdout, stderr } = await run(serverArgs(usableDirs, [flag, 'token']));
      expect(code).toBe(2);
      expect(stderr).toBe('rtmpd: invalid configuration:\n  --api-read-access token and --metrics-access token need --api-token-file\n');
      expect(stdout).toBe('');
    },
  );
});
