// The Node and V8 flags rtmpd runs with, and its malloc settings. bin/rtmpd.js
// (and so `make run`, `make bench` and the image) restarts itself in place
// with them, so they live here and nowhere else, and RTMPD_NODE_FLAGS can add
// to or override the flags: V8 takes a flag's last value
// (`--max-semi-space-size=16`, or `--opt` after `--no-opt`); a malloc setting
// in the environment wins over rtmpd's.
import { START_UP_FLAGS } from './start-up-tiers.ts';

/**
 * --max-semi-space-size=2 caps V8's young generation at two 2 MiB semi-spaces:
 *   left alone it grows to 64 MiB each under a media server's allocation rate,
 *   and all of it stays resident. What the hot path allocates per packet dies
 *   within a tick, so small semi-spaces hold 12 MiB less at 500 streams than
 *   8 MiB ones for more, shorter scavenges; 1 MiB ones held no less at the
 *   peak for half as much scavenging again (docs/performance.md, Memory).
 * --expose-gc lets main.ts give back what loading the modules left in it.
 * --no-node-snapshot starts Node without its built-in start-up snapshot:
 *   deserializing it leaves about 4 MiB of Node's binary in RSS that nothing
 *   reads again, where Node's bootstrap run from the code cache in the binary
 *   maps fewer pages, for about 90 ms more CPU at start: an idle rtmpd 2.1 MiB
 *   lower (docs/performance.md, Memory). The code that runs after start is
 *   the same.
 * START_UP_FLAGS keep V8's compilers beyond its interpreter off while rtmpd
 *   starts; they are switched on once it listens (start-up-tiers.ts).
 */
export const RTMPD_NODE_FLAGS = ['--max-semi-space-size=2', '--expose-gc', '--no-node-snapshot', ...START_UP_FLAGS];

/**
 * MALLOC_MMAP_THRESHOLD_ keeps the size from which glibc's malloc maps a block
 * of its own, and unmaps it when freed, at its default of 128 KiB. Left to
 * itself malloc raises it to the largest block freed so far (V8's parser and
 * compilers free zones of a MiB or more while rtmpd starts), and blocks below
 * it come from the heap, whose free middle malloc keeps: 1.5 MiB of an idle
 * rtmpd's RSS.
 */
export const RTMPD_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

/** The environment to restart this process with: rtmpd's malloc settings under the ones `env` has. */
export function nodeEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...RTMPD_MALLOC_ENV, ...env };
}

/**
 * The command line to restart this process with: rtmpd's flags, then the
 * ones Node was started with, then RTMPD_NODE_FLAGS (whitespace-separated);
 * undefined when the process already runs with rtmpd's flags first.
 */
export function nodeCommandLine(
  execPath: string,
  execArgv: readonly string[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): string[] | undefined {
  if (RTMPD_NODE_FLAGS.every((flag, i) => execArgv[i] === flag)) return undefined;
  const extra = (env.RTMPD_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return [execPath, ...RTMPD_NODE_FLAGS, ...execArgv, ...extra, ...argv.slice(1)];
}

/**
 * Replaces this process (same pid, same stdio) with Node started with rtmpd's flags and malloc settings, unless it has the flags.
 * @public bin/rtmpd.js calls it from the bundle.
 */
export function runWithNodeFlags(): void {
  const commandLine = nodeCommandLine(process.execPath, process.execArgv, process.argv, process.env);
  if (!commandLine) return;
  if (!process.execve) throw new Error('rtmpd restarts itself with its Node flags through process.execve, which this platform lacks');
  process.execve(process.execPath, commandLine, nodeEnvironment(process.env));
}
