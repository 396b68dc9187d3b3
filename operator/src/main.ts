// rtmpd-operator: flags in, operator running, SIGTERM/SIGINT stop it in order
// (running reconciles finish, the leader Lease is released).
import { helpText, parseFlags } from './flags.ts';
import { startOperator } from './operator.ts';
import { version } from './version.ts';

let flags;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`rtmpd-operator: ${(err as Error).message} (see --help)\n`);
  process.exit(2);
}
if (flags.help) {
  process.stdout.write(helpText());
  process.exit(0);
}
if (flags.version) {
  process.stdout.write(`${version}\n`);
  process.exit(0);
}
const operator = await startOperator(flags);
let signals = 0;
const onSignal = (signal: string) => {
  if (++signals > 1) process.exit(1);
  process.stderr.write(`rtmpd-operator: ${signal}, stopping\n`);
  operator.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
