// `make crds`: writes the CRD, the RBAC roles and the README's field
// reference from the schema. With --check it writes nothing and exits 1 when
// a committed file differs (for CI).
//   node --conditions=source operator/src/api/gen-crds.ts [--check]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles, readmePath, withFieldReference } from './generate.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const check = process.argv.includes('--check');
const read = (p: string) => {
  try {
    return readFileSync(resolve(root, p), 'utf8');
  } catch {
    return undefined;
  }
};

const files = generatedFiles();
files[readmePath] = withFieldReference(read(readmePath) ?? '');
let stale = 0;
for (const [path, content] of Object.entries(files)) {
  if (read(path) === content) continue;
  if (check) {
    console.error(`${path} is out of date: run make crds`);
    stale++;
    continue;
  }
  mkdirSync(dirname(resolve(root, path)), { recursive: true });
  writeFileSync(resolve(root, path), content);
  console.log(`wrote ${path}`);
}
process.exitCode = stale ? 1 : 0;
