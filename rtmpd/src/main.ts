// The rtmpd process: flags in, servers up, one line saying where, and a
// graceful exit on SIGTERM/SIGINT. Everything else lives in app.ts; the
// `sign` subcommand lives in auth/sign-command.ts.
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { startRtmpd } from './app.ts';
import { ConfigError, helpText, loadConfig, type LoadedArgs } from './config.ts';
import { ListenError } from './connections/listen.ts';
import { watchConfigFile } from './config-reload.ts';
import { createLogger } from './telemetry/logger.ts';
import { startTracing } from './telemetry/tracing.ts';

const EXIT_CONFIG = 2;

/**
 * The cause of a fatal exit, for Kubernetes: the kubelet shows the container's
 * termination message file (the pod's terminationMessagePath) in the pod's
 * status, where the operator's Stalled condition quotes it; left empty, the
 * log's tail stands there, a stack. Written only where the file exists (the
 * kubelet mounts it), never created; at most the 4096 bytes the kubelet keeps.
 */
function terminationMessage(message: string): void {
  const path = process.env.TERMINATION_MESSAGE_PATH ?? '/dev/termination-log';
  try {
    if (existsSync(path)) writeFileSync(path, Buffer.from(message).subarray(0, 4096));
  } catch {
    // best effort: the log has the whole error
  }
}

// `rtmpd sign ...` mints a signed URL and exits (auth/sign-command.ts).
if (process.argv[2] === 'sign') {
  const { signCommand } = await import('./auth/sign-command.ts');
  process.exit(signCommand(process.argv.slice(3)));
}

const argv = process.argv.slice(2);
let args: LoadedArgs;
try {
  args = loadConfig(argv);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`rtmpd: ${err.message}\n`);
  terminationMessage(`rtmpd: ${err.message}`);
  process.exit(EXIT_CONFIG);
}
if (args.help) {
  process.stdout.write(helpText());
  process.exit(0);
}
if (args.version) {
  // By the package's name, so it resolves the same from src/, dist/ and the bundle.
  const { version } = createRequire(import.meta.url)('@flux-rtmpd/rtmpd/package.json') as { version: string };
  process.stdout.write(`rtmpd ${version}\n`);
  process.exit(0);
}

const { config } = args;
const logger = await createLogger(config);
process.on('uncaughtException', (err) => {
  logger.fatal({ err }, 'uncaught exception; exiting');
  terminationMessage(`rtmpd: uncaught exception: ${err.message}`);
  process.exit(1);
});

// Traces go out only when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
const tracing = await startTracing();
if (tracing)
  logger.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing on (OTLP)');

let rtmpd;
try {
  rtmpd = await startRtmpd(config, logger);
} catch (err) {
  // A port in use or a bad certificate is the operator's to fix: one line naming the option, no stack.
  if (err instanceof ListenError || err instanceof ConfigError) logger.fatal(err.message);
  else logger.fatal({ err }, 'rtmpd failed to start');
  terminationMessage(
    err instanceof ListenError || err instanceof ConfigError ? `rtmpd: ${err.message}` : `rtmpd failed to start: ${(err as Error).message}`,
  );
  process.exit(err instanceof ConfigError ? EXIT_CONFIG : 1);
}
// Loading the modules left garbage in V8's heap (its young generation at its
// cap, start-up's leftovers in old space) and nothing collects it while rtmpd
// waits for its first stream; one last-resort collection now gives that back.
// `gc` exists when Node runs with rtmpd's flags (memory/node-flags.ts).
globalThis.gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });

// Options marked live in config.ts follow the config file while rtmpd runs.
const reload = args.configFile ? watchConfigFile({ file: args.configFile, argv, env: process.env, config, logger }) : undefined;

const shutdown = (signal: NodeJS.Signals): void => {
  reload?.close();
  logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
  // A stop that hangs past the grace period (plus RTMP's own flush time) is cut short.
  setTimeout(
    () => {
      logger.error('shutdown did not finish in time; exiting');
      process.exit(1);
    },
    (config.shutdownGraceSeconds + 5) * 1000,
  ).unref();
  rtmpd
    .stop()
    .then(() => tracing?.shutdown())
    .then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

// The line a supervisor or test waits for: written at once, so everything
// above (the signal handlers too) must be in place before it.
const address = ({ address, port }: { address: string; port: number }) =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
logger.info(
  {
    rtmp: address(rtmpd.rtmpAddress),
    ...(rtmpd.rtmpsAddress ? { rtmps: address(rtmpd.rtmpsAddress) } : {}),
    http: address(rtmpd.httpAddress),
    ...(rtmpd.httpsAddress ? { https: address(rtmpd.httpsAddress) } : {}),
    ...(rtmpd.healthAddress ? { health: address(rtmpd.healthAddress) } : {}),
    storageDir: config.storageDir,
    keyframeDir: config.keyframeDir,
  },
  'rtmpd ready',
);
