// An in-process RTMP server on a free loopback port with its own hub, for the
// tests that drive rtmp/server with real clients. It stops when the test ends.
import { onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { StreamHub } from '../../src/hub/hub.ts';
import { startRtmpServer, type RtmpServer, type RtmpServerConfig, type RtmpServerOptions } from '../../src/rtmp/server/server.ts';
import { createRtmpStats, type RtmpStats } from '../../src/rtmp/server/stats.ts';
import { RtmpClient } from './rtmp-client.ts';

export interface TestRtmpServer {
  hub: StreamHub;
  stats: RtmpStats;
  server: RtmpServer;
  /** rtmp://127.0.0.1:<port>/live/<key> */
  url(key: string): string;
}

export async function startTestRtmpServer(
  overrides: Partial<RtmpServerConfig> = {},
  options: Pick<RtmpServerOptions, 'admission' | 'logger'> = {},
): Promise<TestRtmpServer> {
  const hub = new StreamHub({ gopCacheMaxBytes: 8 << 20, playerMaxBufferBytes: 4 << 20, playerStallTimeoutMs: 10_000 });
  const stats = createRtmpStats();
  const config: RtmpServerConfig = {
    ...parseConfig({}),
    rtmpBind: '127.0.0.1:0',
    maxConnections: 100,
    chunkSize: 4096,
    ...overrides,
  };
  const server = await startRtmpServer({ hub, config, stats, ...options });
  onTestFinished(async () => {
    await server.close();
    hub.closeAll();
  });
  return { hub, stats, server, url: (key) => `rtmp://127.0.0.1:${server.address().port}/live/${key}` };
}

/** A client connected to `url` that is destroyed when the test ends. */
export async function testClient(url: string, options?: Parameters<typeof RtmpClient.connect>[1]): Promise<RtmpClient> {
  const client = await RtmpClient.connect(url, options);
  onTestFinished(() => client.destroy());
  return client;
}
