// Liveness off the main event loop (--health-bind): the main thread writes a
// heartbeat into shared memory, and a worker thread (liveness-worker.ts)
// answers GET /health from its age. The kubelet's probe of /health on the HTTP
// port waits in the same loop as the players: during a join storm it was late
// by 3-10 s (docs/performance.md), and three late answers restart the pod and
// drop every publisher on it. A loop stuck for good still fails the probe.
import type { AddressInfo } from 'node:net';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { splitHostPort, type Config } from '../config.ts';
import { listenFailure } from '../connections/listen.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { LivenessWorkerData, LivenessWorkerMessage } from './liveness-worker.ts';

/** How often the main loop beats: a busy loop beats late, by as long as it was busy. */
const HEARTBEAT_INTERVAL_MS = 250;

/**
 * The worker runs one tiny HTTP server: its heap holds under 8 MiB (Node's
 * own modules, loaded as ES modules from the sources, take most of it), and
 * the caps keep a fault in it from growing this thread's heap like the main one's.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 2, stackSizeMb: 1 };

export interface Liveness {
  address(): AddressInfo;
  close(): Promise<void>;
}

/** The worker's script beside this module's: liveness-worker.ts from the sources, .cjs in the bundle (rtmpd/bundle.ts). */
const workerScript = () => new URL(import.meta.url.endsWith('.ts') ? './liveness-worker.ts' : './liveness-worker.cjs', import.meta.url);

/** Starts the heartbeat and the worker that serves it on --health-bind; rejects with a ListenError if the address cannot be had. */
export async function startLiveness(
  config: Pick<Config, 'healthBind' | 'healthMaxHeartbeatAgeSeconds'>,
  logger: Logger,
): Promise<Liveness> {
  const heartbeat = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT);
  const lastBeat = new BigInt64Array(heartbeat);
  const beat = () => Atomics.store(lastBeat, 0, process.hrtime.bigint());
  beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS).unref();
  const { host, port } = splitHostPort(config.healthBind);
  const workerData: LivenessWorkerData = { heartbeat, host, port, maxAgeMs: config.healthMaxHeartbeatAgeSeconds * 1000 };
  const worker = new Worker(workerScript(), { workerData, resourceLimits: WORKER_LIMITS, env: SHARE_ENV });
  // A worker that dies leaves the port closed: the probe fails and the kubelet restarts the pod, as it should.
  const died = (err: Error) => logger.error({ err }, 'liveness: the --health-bind worker failed; liveness probes will fail');
  try {
    const listening = await listeningAddress(worker, config.healthBind);
    worker.on('error', died);
    worker.unref();
    return {
      address: () => listening,
      close: async () => {
        clearInterval(timer);
        worker.off('error', died);
        await worker.terminate();
      },
    };
  } catch (err) {
    clearInterval(timer);
    await worker.terminate();
    throw err;
  }
}

/** The address the worker listens on, once it does. */
function listeningAddress(worker: Worker, bind: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`liveness: the --health-bind worker exited (code ${code}) before it listened`)));
    worker.once('message', (message: LivenessWorkerMessage) => {
      worker.removeAllListeners('exit').off('error', reject);
      if ('listening' in message) return resolve(message.listening);
      const { code, message: text } = message.failed;
      reject(listenFailure(Object.assign(new Error(text), { code }), bind, 'health-bind'));
    });
  });
}
