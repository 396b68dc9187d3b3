// A running rtmpd follows its config file (as the operator's mounted ConfigMap
// changes): live options apply at once, others wait for a restart.
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, stopAll, tempDir, type RunningServer } from './support/processes.ts';

let server: RunningServer;
let file: string;

beforeAll(async () => {
  file = join(await tempDir('rtmpd-config-'), 'rtmpd.yaml');
  await writeFile(file, 'logLevel: info\nmaxConnections: 100\n');
  server = await startServer(['--config', file]);
});

afterAll(async () => {
  await server?.stop();
  stopAll();
});

/** Opens an RTMP connection and says whether the server kept it open for 500 ms. */
function keptOpen(port: number): Promise<{ open: boolean; close: () => void }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => resolve({ open: true, close: () => socket.destroy() }), 500);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ open: false, close: () => undefined });
    });
  });
}

describe('config file reload', () => {
  it('applies a live option (maxConnections, logLevel) to the running server without a restart', async () => {
    await writeFile(file, 'logLevel: debug\nmaxConnections: 1\n');
    await expect.poll(() => server.logs.some((l) => l.msg === 'config reloaded'), { timeout: 10_000 }).toBe(true);
    expect(server.logs.find((l) => l.msg === 'config reloaded')).toMatchObject({ applied: { logLevel: 'debug', maxConnections: 1 } });
    const first = await keptOpen(server.rtmpPort);
    const second = await keptOpen(server.rtmpPort);
    try {
      expect(first.open).toBe(true);
      expect(second.open).toBe(false); // refused: the new limit holds
    } finally {
      first.close();
      second.close();
    }
    expect(server.child.exitCode).toBeNull();
  });

  it('keeps options that need a restart, and says so', async () => {
    await writeFile(file, 'logLevel: debug\nmaxConnections: 1\nmetricsMaxStreams: 5\n');
    await expect
      .poll(() => server.logs.find((l) => l.msg === 'config change takes effect after a restart'), { timeout: 10_000 })
      .toMatchObject({ options: ['metricsMaxStreams'] });
    expect((await fetch(server.httpUrl('/health'))).status).toBe(200);
  });
});
