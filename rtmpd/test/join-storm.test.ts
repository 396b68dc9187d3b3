// A storm of players joining at once (a popular stream's viewers
// reconnecting after a blip) must find room in the listeners' accept queues.
// With Node's listen backlog (511) the kernel dropped the SYNs past it,
// players' and the kubelet's probes' alike, and each was retried only after
// 1, 3, 7 s: hack/bench/join-storm.ts counted 310 to 590 connections of a
// 1,000- and 2,000-player storm established after a second or more, and
// /health answered up to 9.8 s late. The listeners of a real rtmpd process
// are read from the kernel (`ss`), as the storm itself depends on the
// machine's load.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, stopAll } from './support/processes.ts';

const run = promisify(execFile);

afterAll(() => stopAll());

/** The accept queue's length of the socket listening on `port`: the Send-Q column of `ss` for a listener. */
async function listenBacklog(port: number): Promise<number> {
  const { stdout } = await run('ss', ['-Hltn', `sport = :${port}`]);
  return Number(stdout.trim().split(/\s+/)[2]);
}

describe('a join storm', () => {
  it('finds an accept queue as long as the kernel allows on the RTMP and HTTP listeners, not 511', async () => {
    const server = await startServer();
    const somaxconn = Number(await readFile('/proc/sys/net/core/somaxconn', 'utf8'));
    const expected = Math.min(4096, somaxconn);
    expect(await listenBacklog(server.rtmpPort)).toBe(expected);
    expect(await listenBacklog(server.httpPort)).toBe(expected);
    await server.stop();
  });
});
