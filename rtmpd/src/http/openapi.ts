// The HTTP API's contract as an OpenAPI 3.1 document, rendered from the
// route groups (routing.ts) the routers are built from, and the zod schemas
// they parse their queries with and type their answers by. `make generate`
// writes it to docs/api/openapi.yaml, which rtmpd serves at
// GET /api/v1/openapi.json; rtmpd itself never loads this module (nor zod's
// JSON Schema code), so it costs an idle server nothing.
import { stringify } from 'yaml';
import { z } from 'zod';
import { credentialsSchema } from '../auth/credentials.ts';
import { FLEET_ROUTES } from '../fleet/routes.ts';
import { HEALTH_ROUTES } from './app.ts';
import { CONSOLE_ROUTES } from './console.ts';
import { errorBodySchema } from './errors.ts';
import { HLS_ROUTES } from './hls.ts';
import { HTTP_FLV_ROUTES } from './http-flv.ts';
import { METRICS_ROUTES } from './metrics-route.ts';
import { OPENAPI_ROUTES } from './openapi-route.ts';
import { RECORDING_ROUTES, recordingListSchema, recordingViewSchema } from './recordings-api.ts';
import { REVOCATION_ROUTES, revocationListSchema, revocationViewSchema } from './revocations-api.ts';
import type { Access, Body, Route, RouteGroup } from './routing.ts';
import { streamViewSchema } from './stream-view.ts';
import { kickAnswerSchema, STREAM_ROUTES, streamListSchema } from './streams-api.ts';

/** Every route group rtmpd mounts (http/app.ts, app.ts, fleet/fleet.ts). */
const GROUPS: readonly RouteGroup[] = [
  HEALTH_ROUTES,
  METRICS_ROUTES,
  OPENAPI_ROUTES,
  STREAM_ROUTES,
  REVOCATION_ROUTES,
  RECORDING_ROUTES,
  HTTP_FLV_ROUTES,
  HLS_ROUTES,
  CONSOLE_ROUTES,
  FLEET_ROUTES,
];

/** Schemas named in components.schemas, referred to where they are used. */
const components = {
  Error: errorBodySchema,
  StreamView: streamViewSchema,
  StreamList: streamListSchema,
  KickAnswer: kickAnswerSchema,
  Revocation: revocationViewSchema,
  RevocationList: revocationListSchema,
  Recording: recordingViewSchema,
  RecordingList: recordingListSchema,
};

/** Errors any route of an access can answer: a bad query, a refused token, a failure. */
function commonErrors(access: Access): Record<number, string[]> {
  const errors: Record<number, string[]> = { 400: ['bad_request'], 500: ['internal_error'] };
  if (access === 'read' || access === 'metrics') errors[401] = ['unauthorized', 'bad_token'];
  if (access === 'token') Object.assign(errors, { 401: ['unauthorized', 'bad_token'], 403: ['api_token_not_configured'] });
  // The play rules answer their reasons (auth/authorizer.ts) as codes.
  if (access === 'play') Object.assign(errors, { 401: [], 403: [] });
  if (access === 'fleet') errors[401] = ['fleet_token_required'];
  return errors;
}

const SECURITY: Record<Access, object[]> = {
  open: [],
  read: [{}, { apiToken: [] }],
  metrics: [{}, { apiToken: [] }],
  token: [{ apiToken: [] }],
  play: [{}, { playToken: [] }],
  fleet: [{ fleetToken: [] }],
};

const ACCESS_NOTE: Record<Access, string> = {
  open: 'Open to anyone.',
  read: 'Open unless `--api-read-access token`.',
  metrics: 'Open unless `--metrics-access token`.',
  token: 'Needs an API token (`--api-token-file`).',
  play: 'Decided by the play rules: credentials in the query (`secret`, `exp` and `sig`, `jwt`) or a JWT as the bearer token.',
  fleet: "Internal: only for the pods of a fleet, with the fleet's own token (never an end user's).",
};

/** A component's $ref, or any other schema in full (JSON Schema 2020-12, without `$schema`). */
type ToJsonSchema = (schema: z.ZodType, io: 'input' | 'output') => object;

/** The OpenAPI document for rtmpd `version`. */
function openapiDocument(version: string): object {
  const metadata = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) metadata.add(schema, { id });
  const uri = (id: string) => `#/components/schemas/${id}`;
  const jsonSchema: ToJsonSchema = (schema, io) => {
    const id = metadata.get(schema)?.id;
    if (id) return { $ref: uri(id) };
    const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12' });
    return rest;
  };
  const schemas = Object.fromEntries(
    Object.entries(z.toJSONSchema(metadata, { uri, io: 'output', target: 'draft-2020-12' }).schemas).map(([id, schema]) => {
      const { $schema: _, $id: __, ...rest } = schema;
      return [id, rest];
    }),
  );
  const paths: Record<string, Record<string, object>> = {};
  for (const route of GROUPS.flatMap((group) => Object.values(group)))
    for (const path of route.paths) (paths[path.replace(/:(\w+)/g, '{$1}')] ??= {})[route.method] = operation(route, path, jsonSchema);
  return {
    openapi: '3.1.0',
    info: {
      title: 'rtmpd HTTP API',
      version,
      description:
        'The HTTP side of rtmpd: the stream, revocation and recording API, health, metrics, and HTTP-FLV/HLS playback; ' +
        'the web console and the pods of a fleet have routes of their own, marked `x-internal`. ' +
        'Query parameters are strict on the API: an unknown, repeated or invalid one is a 400 that names it. ' +
        'Every GET path answers HEAD too (the same status and headers, no body). ' +
        'A method a path does not take, whatever it is (TRACE, PROPFIND), is a 405 (`method_not_allowed`) ' +
        'whose Allow header names those it does. ' +
        'Every error is JSON `{"error":{"code","message"}}`.',
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        apiToken: { type: 'http', scheme: 'bearer', description: 'A token from --api-token-file' },
        playToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A player JWT, when the play rules take JWTs' },
        fleetToken: { type: 'http', scheme: 'bearer', description: "The fleet's own token, which its pods share" },
      },
    },
  };
}

function operation(route: Route, path: string, jsonSchema: ToJsonSchema): object {
  const pathParams = [...path.matchAll(/:(\w+)/g)].map(([, name = '']) => ({
    name,
    in: 'path',
    required: true,
    ...(route.params?.[name] ? parameterDescription(jsonSchema(route.params[name], 'input')) : {}),
    schema: route.params?.[name] ? jsonSchema(route.params[name], 'input') : { type: 'string' },
  }));
  const query = jsonSchema(route.playCredentials ? credentialsSchema.extend(route.query.shape) : route.query, 'input') as {
    properties?: Record<string, object>;
    required?: string[];
  };
  const queryParams = Object.entries(query.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    ...parameterDescription(schema),
    required: query.required?.includes(name) ?? false,
    schema,
  }));
  const responses: Record<string, object> = {};
  for (const [status, answer] of Object.entries(route.ok))
    responses[status] = { description: answer.description, ...content(answer, jsonSchema) };
  const errors = commonErrors(route.access);
  for (const [status, codes] of Object.entries(route.errors ?? {})) errors[Number(status)] = [...(errors[Number(status)] ?? []), ...codes];
  const error = jsonSchema(errorBodySchema, 'output');
  for (const [status, codes] of Object.entries(errors)) {
    // The error body, its code narrowed to those this route answers with this status.
    const codeIn = { properties: { error: { properties: { code: { enum: codes } } } } };
    const schema = codes.length === 0 ? error : { allOf: [error, codeIn] };
    responses[status] = { description: codes.join(', ') || 'Refused by the play rules', content: { 'application/json': { schema } } };
  }
  return {
    ...(route.internal && { tags: [route.internal], 'x-internal': true }),
    summary: route.summary,
    description: ACCESS_NOTE[route.access],
    ...(route.access !== 'open' && { security: SECURITY[route.access] }),
    ...(pathParams.length + queryParams.length > 0 && { parameters: [...pathParams, ...queryParams] }),
    responses,
  };
}

/** A parameter's description at its own level too, where OpenAPI tools show it. */
const parameterDescription = (schema: { description?: string }) => (schema.description ? { description: schema.description } : {});

function content(body: Body, jsonSchema: ToJsonSchema): object {
  if ('json' in body) return { content: { 'application/json': { schema: jsonSchema(body.json, 'output') } } };
  if ('media' in body) return { content: Object.fromEntries(body.media.map((type) => [type, {}])) };
  return {};
}

/** The document as the YAML committed at docs/api/openapi.yaml. */
export function openapiYaml(version: string): string {
  const header = '# Generated from rtmpd/src (http/openapi.ts and the route lists and schemas it names) by `make generate`; do not edit.\n';
  return header + stringify(openapiDocument(version), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** The same document as docs/api/openapi.json, the file rtmpd serves as it is (http/openapi-route.ts). */
export const openapiJson = (version: string): string => `${JSON.stringify(openapiDocument(version))}\n`;
