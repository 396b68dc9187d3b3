// Rewrites the generated sections of README.md from their sources (`make docs`).
import { readFileSync, writeFileSync } from 'node:fs';
import { withOptionsTable } from '../rtmpd/src/config-docs.ts';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, withOptionsTable(readFileSync(path, 'utf8')));
