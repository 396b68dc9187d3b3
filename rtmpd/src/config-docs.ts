// The option reference as Markdown, printed from the config schema, so the
// README's table cannot drift from what rtmpd accepts (make generate).
import { reloadOf, rtmpdOptions, type ConfigKey } from './config.ts';
import { optionsTable as table } from './options.ts';

export const optionsTable = (): string => table(rtmpdOptions, { change: (key) => reloadOf(key as ConfigKey) });
