// GET /api/v1/openapi.json: the API's OpenAPI document (docs/api/openapi.yaml,
// which `make generate` renders from the schemas in http/openapi.ts). The
// file is read and converted at the first request, so an rtmpd that nobody
// asks for it holds neither the document nor the YAML parser.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseYaml } from '../yaml.ts';
import { noQuery, withQuery } from './query.ts';
import { Router } from './required-modules.ts';

/** Where rtmpd serves the document. */
export const OPENAPI_PATH = '/api/v1/openapi.json';
/** The document, relative to the repository root (and to /app in the image). */
export const OPENAPI_FILE = 'docs/api/openapi.yaml';

// Three levels up from both rtmpd/src/http (the sources) and rtmpd/dist/bundle (the bundle).
const documentPath = fileURLToPath(new URL(`../../../${OPENAPI_FILE}`, import.meta.url));

export function openapiRoute(): Router {
  const router = new Router();
  let json: string | undefined;
  router.get(
    OPENAPI_PATH,
    withQuery(noQuery, async (ctx) => {
      json ??= JSON.stringify(parseYaml(await readFile(documentPath, 'utf8')));
      ctx.type = 'application/json';
      ctx.body = json;
    }),
  );
  return router;
}
