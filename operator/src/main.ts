// rtmpd-operator: flags in, operator running, SIGTERM/SIGINT stop it in order
// (running reconciles finish, the leader Lease is released).
import { ConfigError, helpText, parseFlags, type ParsedFlags } from './flags.ts';
import { ListenError } from './endpoints.ts';
import { startOperator } from './operator.ts';
import { version } from './version.ts';

let parsed: ParsedFlags;
try {
  parsed = parseFlags(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`rtmpd-operator: ${err.message}\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(helpText());
  process.exit(0);
}
if (parsed.version) {
  process.stdout.write(`${version}\n`);
  process.exit(0);
}
const operator = await startOperator(parsed.flags).catch((err: unknown) => {
  if (!(err instanceof ListenError)) throw err;
  process.stderr.write(`rtmpd-operator: ${err.message}\n`);
  process.exit(1);
});
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
