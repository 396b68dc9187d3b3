// A load-generator worker process, forked by loadgen-processes.ts: runs one
// share of the connections and answers its parent's requests in order.
import { dirname } from 'node:path';
import { loadFixture } from './fixture.ts';
import { LoadGenerator } from './loadgen.ts';
import type { ShareResult, WorkerReply, WorkerRequest } from './loadgen-processes.ts';
import { adoptClock } from './sei.ts';

let gen: LoadGenerator | undefined;

async function handle(req: WorkerRequest): Promise<unknown> {
  if (req.op === 'setup') {
    const { fixture, wallMinusMonotonicMs, ...options } = req.setup;
    const clockOffsetUs = adoptClock(wallMinusMonotonicMs);
    // The fixture is cached on disk by the parent: loading it here is a read, not an encode.
    gen = new LoadGenerator({ ...options, fixture: await loadFixture(fixture.spec, dirname(fixture.path)) });
    gen.load.clockOffsetUs = clockOffsetUs;
    return undefined;
  }
  if (!gen) throw new Error(`${req.op} before setup`);
  switch (req.op) {
    case 'publish':
      return gen.startPublishers();
    case 'play':
      return gen.startPlayers();
    case 'begin':
      return gen.beginMeasure();
    case 'end':
      return gen.endMeasure();
    case 'stopPublishing':
      return gen.stopPublishing();
    case 'finish': {
      gen.finish(req.sent);
      const result: ShareResult = { counters: gen.counters, load: gen.load, latency: gen.latency.values(), errors: gen.errors };
      return result;
    }
    case 'close':
      return gen.close();
  }
}

process.on('message', (req: WorkerRequest) => {
  const reply = (r: WorkerReply): void => void process.send!(r);
  handle(req).then(
    (value) => reply({ ok: true, value }),
    (err: unknown) => reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});

// The parent disconnects once it has what it needs: end when the closed connections are gone, or a second later.
process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref());
