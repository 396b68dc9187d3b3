// The load generator's shares against a real rtmpd: worker processes that
// each run part of a stream's connections, and the parent's merge of what
// they count (part of make test's bench smoke).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../rtmpd/test/support/wait.ts';
import { FIXTURES, loadFixture, type Fixture } from './fixture.ts';
import { LoadGenerator, type LoadOptions } from './loadgen.ts';
import { LoadProcesses } from './loadgen-processes.ts';
import { OBS_STYLE } from './rtmp-peer.ts';
import { REPO_ROOT, removeServerDir, startServer, type RunningServer } from './servers.ts';

let server: RunningServer;
let fixture: Fixture;

beforeAll(async () => {
  fixture = await loadFixture(FIXTURES['360p']!, join(REPO_ROOT, '.bench', 'fixtures')); // the cache make bench uses
  server = await startServer('rtmpd');
});

afterAll(async () => {
  if (!server) return;
  await server.stop();
  removeServerDir(server);
});

const load = (streams: number, playersPerStream: number): Omit<LoadOptions, 'runId' | 'share'> => ({
  rtmpBase: server.rtmpBase,
  httpBase: server.httpBase,
  streams,
  playersPerStream,
  playProtocol: 'rtmp',
  fixture,
  publisherStyle: OBS_STYLE,
});

describe('load generator processes', () => {
  it("runs each stream's publisher and players in different processes, on one clock, and sums their counts", async () => {
    // 2 streams × 3 players over 2 processes: publisher 0 and players 0, 2 of stream 0 and 1 of stream 1 in the first.
    const gen = new LoadProcesses({ ...load(2, 3), processes: 2 });
    await gen.start();
    await gen.beginMeasure();
    await sleep(2000);
    await gen.endMeasure();
    await gen.stop(500);
    const c = gen.counters;
    expect(gen.errors).toEqual([]);
    expect(c).toMatchObject({
      publishersUp: 2,
      playersUp: 6,
      connectFailures: 0,
      droppedConnections: 0,
      failureReasons: {},
      playersWithoutMedia: 0,
      framesLost: 0,
      framesOutOfOrder: 0,
    });
    // No player gets a frame twice, and each got its stream's frames of the last 2 s (25 fps).
    expect(c.videoFramesReceived).toBeLessThanOrEqual(3 * c.videoFramesSent);
    expect(c.videoFramesReceived).toBeGreaterThan(6 * 2 * 25);
    expect(c.generatorProcesses).toHaveLength(2);
    let cpu = 0;
    for (const p of c.generatorProcesses) {
      expect(p.cpuPercent).toBeGreaterThan(0);
      expect(p.cpuSystemPercent).toBeGreaterThan(0);
      expect(p.cpuSystemPercent).toBeLessThanOrEqual(p.cpuPercent);
      expect(p.eventLoopUtilization).toBeGreaterThan(0);
      expect(p.loopDelayP99Ms).toBeGreaterThan(0);
      // A worker's own wall clock differs from its parent's by how long the two readings of each took.
      expect(Math.abs(p.clockOffsetUs)).toBeLessThan(1000);
      cpu += p.cpuPercent;
    }
    expect(c.generatorCpuPercent).toBeCloseTo(cpu);
    expect(c.generatorEventLoopUtilization).toBe(Math.max(...c.generatorProcesses.map((p) => p.eventLoopUtilization)));
    // Stamped in one process, read in the other: a clock skew would show as latencies off by as much, some below 0.
    const latency = gen.latency.summary();
    expect(latency.count).toBeGreaterThan(0);
    expect(Math.min(...gen.latency.values())).toBeGreaterThan(0);
    expect(latency.p50Ms).toBeLessThan(1000);
  });

  it('counts the frames a player never got from a publisher in another share', async () => {
    const options = { ...load(1, 2), runId: `share-${process.pid}` };
    const publishing = new LoadGenerator({ ...options, share: { index: 0, of: 2 } }); // publisher 0, player 0
    const playing = new LoadGenerator({ ...options, share: { index: 1, of: 2 } }); // player 1
    await publishing.startPublishers();
    await playing.startPublishers(); // none of its own: starts its scheduler only
    await sleep(500);
    await Promise.all([publishing.startPlayers(), playing.startPlayers()]);
    await sleep(1000);
    const [[stream, sent]] = publishing.stopPublishing() as [[number, number]];
    expect(stream).toBe(0);
    await sleep(500);
    // As if the publisher had sent 7 more probed frames than the player in the other share read.
    playing.finish([sent + 7]);
    publishing.finish([sent]);
    expect(playing.counters).toMatchObject({ publishersUp: 0, playersUp: 1, framesLost: 7, playersWithoutMedia: 0 });
    expect(publishing.counters).toMatchObject({ publishersUp: 1, playersUp: 1, framesLost: 0 });
    playing.close();
    publishing.close();
  });
});
