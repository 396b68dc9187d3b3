// `make generate`: writes every generated file (hack/generate/files.ts).
// With --check (`make lint`) it writes nothing, names each stale file and exits 1.
//   node --conditions=source hack/generate/main.ts [--check]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderAll } from './files.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const check = process.argv.includes('--check');

const read = (path: string): string | undefined => {
  try {
    return readFileSync(resolve(root, path), 'utf8');
  } catch {
    return undefined;
  }
};

let stale = 0;
for (const [path, content] of renderAll(read)) {
  if (read(path) === content) continue;
  if (check) {
    console.error(`${path} is out of date: run make generate`);
    stale++;
    continue;
  }
  mkdirSync(dirname(resolve(root, path)), { recursive: true });
  writeFileSync(resolve(root, path), content);
  console.log(`wrote ${path}`);
}
process.exitCode = stale ? 1 : 0;
