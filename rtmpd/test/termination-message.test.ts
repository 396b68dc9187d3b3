// A fatal exit leaves its cause, one short line, in the termination message
// file the kubelet mounts (the pod's terminationMessagePath), which the pod's
// status and the operator's Stalled condition show. Without it the kubelet
// shows the log's tail: for an error that is not a config error, a stack.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverEntry } from './support/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'termination-message-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs rtmpd to its exit with the termination message file at `messageFile`; its exit code and stdout. */
function run(messageFile: string, flags: string[]) {
  const args = [
    '--rtmp-bind',
    '127.0.0.1:0',
    '--http-bind',
    '127.0.0.1:0',
    '--storage-dir',
    join(dir, 's'),
    '--keyframe-dir',
    join(dir, 'k'),
  ];
  const child = spawn(process.execPath, [serverEntry(), ...args, ...flags], {
    env: { ...process.env, TERMINATION_MESSAGE_PATH: messageFile },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise<{ code: number | null; stdout: string }>((done) => child.once('close', (code) => done({ code, stdout })));
}

/** An empty file, as the kubelet mounts it. */
function messageFile(name: string): string {
  const file = join(dir, name);
  writeFileSync(file, '');
  return file;
}

describe('the termination message', () => {
  it('of a failed start that is not a config error: the cause, where the log has a stack', async () => {
    const file = messageFile('start');
    // A bind host that does not resolve (.invalid never does, RFC 6761): an error rtmpd does not word itself.
    const { code, stdout } = await run(file, ['--http-bind', 'rtmpd-test.invalid:0']);
    expect(code).toBe(1);
    expect(stdout).toContain('"stack":');
    expect(readFileSync(file, 'utf8')).toBe('rtmpd failed to start: getaddrinfo ENOTFOUND rtmpd-test.invalid');
  });

  it('of a config error: its one line', async () => {
    const file = messageFile('config');
    const { code } = await run(file, ['--bogus-flag']);
    expect(code).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe("rtmpd: Unknown option '--bogus-flag' (see --help)");
  });

  it('is never created where no kubelet mounted the file', async () => {
    const file = join(dir, 'absent');
    expect((await run(file, ['--bogus-flag'])).code).toBe(2);
    expect(existsSync(file)).toBe(false);
  });
});

describe('a long termination message', () => {
  it('is cut to the 4096 bytes the kubelet keeps', async () => {
    const file = messageFile('long');
    const flag = `--bogus-${'x'.repeat(5000)}`;
    expect((await run(file, [flag])).code).toBe(2);
    const message = readFileSync(file);
    expect(message.length).toBe(4096);
    expect(message.toString('utf8')).toBe(`rtmpd: Unknown option '${flag}' (see --help)`.slice(0, 4096));
  });
});
