// What the README and examples/ show a user, read the way the tests that check
// it need: the README's fenced blocks, its YAML mappings, and every RtmpServer
// shown (README fragments of a spec made whole resources, named by their place).
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const readRepoFile = (path: string): string => readFileSync(resolve(repo, path), 'utf8');

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The README's fenced blocks of one language. */
export const readmeBlocks = (language: string): string[] =>
  [...readRepoFile('README.md').matchAll(new RegExp('^```' + language + '\\n([\\s\\S]*?)^```', 'gm'))].map((m) => m[1]!);

/** The README's YAML blocks that are mappings: config files, RtmpServers and their fragments. */
export const readmeYamlMappings = (): Mapping[] =>
  readmeBlocks('yaml')
    .map((b) => parseYaml(b) as unknown)
    .filter(isMapping);

interface ShownRtmpServer {
  /** Where it is shown: `README.md #n` (the nth RtmpServer there) or `examples/<file>`. */
  shownIn: string;
  server: { apiVersion: string; kind: 'RtmpServer'; metadata: { name: string; namespace?: string }; spec: Mapping };
}

/** Every RtmpServer the README (whole, or a `spec:` fragment) and examples/ show. */
export function shownRtmpServers(): ShownRtmpServer[] {
  const isServer = (d: Mapping) => isMapping(d.spec) && (d.kind ?? 'RtmpServer') === 'RtmpServer';
  const readme = readmeYamlMappings()
    .filter(isServer)
    .map((d, i) => ({
      shownIn: `README.md #${i + 1}`,
      server: { apiVersion: 'media.fluxiot.io/v1alpha1', kind: 'RtmpServer', metadata: { name: `readme-${i + 1}` }, ...d },
    }));
  const examples = readdirSync(resolve(repo, 'examples')).flatMap((file) =>
    parseAllDocuments(readRepoFile(`examples/${file}`))
      .map((d) => d.toJS() as unknown)
      .filter(isMapping)
      .filter(isServer)
      .map((d) => ({ shownIn: `examples/${file}`, server: d })),
  );
  return [...readme, ...examples] as ShownRtmpServer[];
}
