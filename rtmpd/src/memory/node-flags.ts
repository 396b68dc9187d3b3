// The Node and V8 flags rtmpd runs with. bin/rtmpd.js (and so `make run`,
// `make bench` and the image) restarts itself in place with them, so they
// live here and nowhere else, and RTMPD_NODE_FLAGS can add to or override
// them: V8 takes a flag's last value (`--max-semi-space-size=16`, or `--opt`
// after `--no-opt`).
import { START_UP_FLAGS } from './start-up-tiers.ts';

/**
 * --max-semi-space-size=8 caps V8's young generation at two 8 MiB semi-spaces:
 *   left alone it grows to 64 MiB each under a media server's allocation rate,
 *   and the dead message buffers it holds until the next scavenge stay resident.
 * --expose-gc lets main.ts give back what loading the modules left in it.
 * START_UP_FLAGS keep V8's compilers beyond its interpreter off while rtmpd
 *   starts; they are switched on once it listens (start-up-tiers.ts).
 */
export const RTMPD_NODE_FLAGS = ['--max-semi-space-size=8', '--expose-gc', ...START_UP_FLAGS];

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

/** Replaces this process (same pid, same stdio) with Node started with rtmpd's flags, unless it has them. */
export function runWithNodeFlags(): void {
  const commandLine = nodeCommandLine(process.execPath, process.execArgv, process.argv, process.env);
  if (!commandLine) return;
  if (!process.execve) throw new Error('rtmpd restarts itself with its Node flags through process.execve, which this platform lacks');
  process.execve(process.execPath, commandLine, process.env);
}
