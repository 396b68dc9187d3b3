// The option reference as Markdown, printed from the config schema, so the
// README's table cannot drift from what rtmpd accepts (make generate).
import { configKeys, configSchema, envName, flagName } from './config.ts';

export function optionsTable(): string {
  const rows = configKeys.map((key) => {
    const field = configSchema.shape[key];
    const fallback = JSON.stringify(field.parse(undefined));
    const description = (field.description ?? '').replace(/\|/g, '\\|');
    return `| \`--${flagName(key)}\` | \`${envName(key)}\` | \`${fallback}\` | ${description} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
