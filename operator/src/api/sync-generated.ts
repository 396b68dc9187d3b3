// Writes generated files, or with `check` only reports the stale ones: the
// one loop behind `make crds` and `make chart-docs` and their --check in lint.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Returns how many files differ from `files` (path relative to `root` → content). */
export function syncGenerated(root: string, files: Record<string, string>, check: boolean, remedy: string): number {
  let stale = 0;
  for (const [path, content] of Object.entries(files)) {
    const target = resolve(root, path);
    if (readIfExists(target) === content) continue;
    if (check) {
      console.error(`${path} is out of date: run ${remedy}`);
      stale++;
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    console.log(`wrote ${path}`);
  }
  return stale;
}
