// The API's routers: streams, revocations, recordings and the OpenAPI
// document. http/app.ts loads this module at the API's first request
// (lazyRouters), so an rtmpd nobody asks holds none of their route lists and
// schemas. One module rather than one import each: every module the bundle
// splits off is a chunk of its own, each with its own cost at load.
import type { HttpAppOptions } from './app.ts';
import { openapiRoute } from './openapi-route.ts';
import { recordingsApi } from './recordings-api.ts';
import type { Router } from './required-modules.ts';
import { revocationsApi } from './revocations-api.ts';
import { streamsApi } from './streams-api.ts';

export function apiRouters(options: HttpAppOptions): Router[] {
  return [
    streamsApi(options),
    revocationsApi(options.authorizer),
    ...(options.recordings ? [recordingsApi(options.recordings)] : []),
    openapiRoute(),
  ];
}
