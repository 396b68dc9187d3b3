// `make crds`: writes the CRD, the RBAC roles and the README's field
// reference from the schema. With --check it writes nothing and exits 1 when
// a committed file differs (for CI).
//   node --conditions=source operator/src/api/gen-crds.ts [--check]
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles, readmePath, withFieldReference } from './generate.ts';
import { readIfExists, syncGenerated } from './sync-generated.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const files = generatedFiles();
files[readmePath] = withFieldReference(readIfExists(resolve(root, readmePath)) ?? '');
process.exitCode = syncGenerated(root, files, process.argv.includes('--check'), 'make crds') ? 1 : 0;
