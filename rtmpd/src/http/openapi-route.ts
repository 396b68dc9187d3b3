// GET /api/v1/openapi.json: the API's OpenAPI document, as `make generate`
// renders it from the route lists (http/openapi.ts). The JSON copy of
// docs/api/openapi.yaml is sent as it is, read from the file at the first
// request and kept (90 KB): parsing the YAML at the first request grew
// rtmpd's RSS by 18 MiB for good, and a read of the file for each request
// held what was read of it for each client that did not read its answer
// (2,000 such clients grew rtmpd by 92-96 MiB); they share one copy now (42).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { noQuery } from './query.ts';
import type { Router } from './required-modules.ts';
import { routerFor, type RouteGroup } from './routing.ts';

/** Where rtmpd serves the document. */
const OPENAPI_PATH = '/api/v1/openapi.json';
/** The document and its JSON copy, relative to the repository root (and to /app in the image). */
export const OPENAPI_FILES = { yaml: 'docs/api/openapi.yaml', json: 'docs/api/openapi.json' };

// Three levels up from both rtmpd/src/http (the sources) and rtmpd/dist/bundle (the bundle).
const jsonPath = fileURLToPath(new URL(`../../../${OPENAPI_FILES.json}`, import.meta.url));

export const OPENAPI_ROUTES = {
  document: {
    method: 'get',
    paths: [OPENAPI_PATH],
    summary: 'This document',
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The OpenAPI 3.1 document', media: ['application/json'] } },
  },
} satisfies RouteGroup;

let document: Buffer | undefined;

export const openapiRoute = (): Router =>
  routerFor(OPENAPI_ROUTES, {
    document: async (ctx) => {
      ctx.type = 'application/json';
      ctx.body = document ??= await readFile(jsonPath);
    },
  });
