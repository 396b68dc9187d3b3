// The YAML parser, loaded at its first use: only a config file or a key
// store file needs it, and loading it at start grew every rtmpd's idle memory.
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

const require = createRequire(import.meta.url);
let yaml: typeof Yaml | undefined;

/** YAML (or JSON) text to its value; throws on a syntax error. */
export function parseYaml(text: string): unknown {
  yaml ??= require('yaml') as typeof Yaml;
  return yaml.parse(text);
}
