// V8's compilers beyond the interpreter, off while rtmpd starts. Start-up
// code runs once, and compiling it with the faster tiers brings about 8 MiB
// of their code (in Node's binary) into an idle rtmpd's RSS; rtmpd starts
// with these flags (node-flags.ts) and bin/rtmpd.js switches Sparkplug and
// TurboFan on once it listens. Maglev, the tier between them, stays off: hot
// code goes from Sparkplug to TurboFan, and Maglev's own code in Node's
// binary stays out of a loaded rtmpd's RSS (1.4 MiB at 500 streams).
import { setFlagsFromString } from 'node:v8';

/** The flags that keep the tiers off (part of RTMPD_NODE_FLAGS). */
export const START_UP_FLAGS = ['--no-opt', '--no-maglev', '--no-sparkplug'];

/**
 * Switches Sparkplug and TurboFan on when Node was started with all of
 * START_UP_FLAGS; a process started with only some of them (someone who
 * wants the tiers off) keeps its flags.
 * @public bin/rtmpd.js calls it from the bundle.
 */
export function enableCompilerTiers(execArgv: readonly string[] = process.execArgv): boolean {
  if (!START_UP_FLAGS.every((flag) => execArgv.includes(flag))) return false;
  for (const tier of ['--turbofan', '--sparkplug']) setFlagsFromString(tier);
  return true;
}
