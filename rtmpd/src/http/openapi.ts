// The HTTP API's contract as an OpenAPI 3.1 document, rendered from the zod
// schemas the routes parse their queries with and type their answers by.
// `make generate` writes it to docs/api/openapi.yaml, which rtmpd serves at
// GET /api/v1/openapi.json; rtmpd itself never loads this module (nor zod's
// JSON Schema code), so it costs an idle server nothing.
import { stringify } from 'yaml';
import { z } from 'zod';
import { errorBodySchema } from './errors.ts';
import { blockingQuery, MEDIA_FILE } from './hls.ts';
import { noQuery } from './query.ts';
import { listQuery, recordingListSchema, recordingSelection, recordingViewSchema } from './recordings-api.ts';
import { revocationListSchema, revocationViewSchema, secondsQuery } from './revocations-api.ts';
import { streamViewSchema } from './stream-view.ts';
import { banQuery, encodedParams, kickAnswerSchema, streamListSchema } from './streams-api.ts';

import { OPENAPI_PATH } from './openapi-route.ts';

/**
 * Who may call a route (auth/http-access.ts): `open` anyone; `read` anyone
 * unless --api-read-access is `token`; `token` only with an API token;
 * `metrics` by --metrics-access; `play` by the play rules (a player's
 * credentials in the query, or a JWT as its bearer token).
 */
type Access = 'open' | 'read' | 'token' | 'metrics' | 'play';

type Body = { json: z.ZodType } | { media: readonly string[] } | { empty: true };

interface Route {
  method: 'get' | 'put' | 'delete';
  /** As Koa's router has it: `:name` is a path parameter. */
  path: string;
  summary: string;
  access: Access;
  query: z.ZodObject;
  /** Path parameters with more to say than "a string". */
  params?: Record<string, z.ZodType>;
  ok: Record<number, { description: string } & Body>;
  /** The error codes (errors.ts) each status can carry, besides those every route of its access can. */
  errors?: Record<number, readonly string[]>;
}

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

/**
 * What the play rules read from a player's query (auth/authorizer.ts): a
 * stream secret, a signed URL's expiry, address and signature
 * (auth/signed-url.ts), or a JWT.
 */
const playCredentials = z.object({
  secret: z.string().optional().describe("the stream's secret, when the play rules check one"),
  exp: z.string().optional().describe("a signed URL's expiry (Unix seconds)"),
  ip: z.string().optional().describe('the client address a signed URL is bound to, when it is'),
  sig: z.string().optional().describe("a signed URL's signature"),
  jwt: z.string().optional().describe('a player JWT (or send it as the bearer token)'),
});

const json = (schema: z.ZodType) => ({ json: schema });
const media = (...types: string[]) => ({ media: types });
const empty = { empty: true } as const;
const text = media('text/plain');
const PLAYLIST = 'application/vnd.apple.mpegurl';

const STREAM_ID_PARAMS = { stream_id: encodedParams.shape.stream_id };
const STREAM_NOT_FOUND = { 404: ['stream_not_found'] };

/** A stream's routes under `prefix`, for both forms its id takes (streams-api.ts). */
const byStreamId = (prefix: string, routes: (id: string) => Omit<Route, 'params'>[]): Route[] =>
  [`${prefix}/:stream_id`, `${prefix}/rtmp/:app/:key`].flatMap((id) => routes(id).map((r) => ({ ...r, params: STREAM_ID_PARAMS })));

/** A recording's routes in the three forms its id takes (recordings-api.ts). */
const RECORDING_IDS = ['/:id', '/:app/:key/:name', '/:pod/:app/:key/:name'];

const STREAMS = '/api/v1/rtmp/streams';
const RECORDINGS = '/api/v1/rtmp/recordings';
const REVOCATIONS = '/api/v1/auth/revocations';

const routes: readonly Route[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Liveness: the process works',
    access: 'open',
    query: noQuery,
    ok: { 200: { description: 'OK', ...text } },
  },
  {
    method: 'get',
    path: '/ready',
    summary: 'Readiness: rtmpd takes new clients (503 while it drains)',
    access: 'open',
    query: noQuery,
    ok: { 200: { description: 'OK', ...text }, 503: { description: 'draining', ...text } },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    access: 'metrics',
    query: noQuery,
    ok: { 200: { description: 'Metrics in the Prometheus text format', ...text } },
  },
  {
    method: 'get',
    path: OPENAPI_PATH,
    summary: 'This document',
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The OpenAPI 3.1 document', ...media('application/json') } },
  },
  {
    method: 'get',
    path: STREAMS,
    summary: 'The live streams (in a fleet, of every pod); publisher addresses only to a caller with an API token',
    access: 'read',
    query: noQuery,
    ok: { 200: { description: 'The streams', ...json(streamListSchema) } },
  },
  ...byStreamId(STREAMS, (id): Omit<Route, 'params'>[] => [
    {
      method: 'get',
      path: id,
      summary: 'One live stream; its publisher address only to a caller with an API token',
      access: 'read',
      query: noQuery,
      ok: { 200: { description: 'The stream', ...json(streamViewSchema) } },
      errors: { 400: ['invalid_stream_id'], ...STREAM_NOT_FOUND },
    },
    {
      method: 'delete',
      path: id,
      summary: 'Kick the publisher, and revoke its key for ban_seconds',
      access: 'token',
      query: banQuery,
      ok: { 200: { description: 'Kicked', ...json(kickAnswerSchema) } },
      errors: { 400: ['invalid_stream_id'], ...STREAM_NOT_FOUND, 409: ['not_owner'] },
    },
    {
      method: 'get',
      path: `${id}/snapshot`,
      summary: "Snapshot: a JPEG of the stream's last keyframe",
      access: 'read',
      query: noQuery,
      ok: { 200: { description: 'The JPEG', ...media('image/jpeg') } },
      errors: {
        400: ['invalid_stream_id'],
        404: ['stream_not_found', 'no_video', 'no_keyframe'],
        409: ['snapshots_disabled'],
        415: ['unsupported_codec'],
        503: ['busy', 'decode_failed'],
      },
    },
  ]),
  {
    method: 'get',
    path: REVOCATIONS,
    summary: 'The revoked stream keys',
    access: 'token',
    query: noQuery,
    ok: { 200: { description: 'The revocations', ...json(revocationListSchema) } },
  },
  ...byStreamId(REVOCATIONS, (id): Omit<Route, 'params'>[] => [
    {
      method: 'put',
      path: id,
      summary: 'Revoke a stream key (for `seconds`, else until lifted or restart); its publisher ends',
      access: 'token',
      query: secondsQuery,
      ok: { 200: { description: 'The revocation', ...json(revocationViewSchema) } },
      errors: { 400: ['invalid_stream_id'], 409: ['too_many_revocations'] },
    },
    {
      method: 'delete',
      path: id,
      summary: 'Lift a revocation',
      access: 'token',
      query: noQuery,
      ok: { 204: { description: 'Lifted', ...empty } },
      errors: { 400: ['invalid_stream_id'], 404: ['revocation_not_found'] },
    },
  ]),
  {
    method: 'get',
    path: RECORDINGS,
    summary: 'The recordings, by stream and time range, a page at a time',
    access: 'read',
    query: listQuery,
    ok: { 200: { description: 'A page of recordings', ...json(recordingListSchema) } },
  },
  {
    method: 'get',
    path: `${RECORDINGS}/playlist.m3u8`,
    summary: "A VOD HLS playlist over one stream's fMP4 recordings",
    access: 'read',
    query: recordingSelection,
    ok: { 200: { description: 'The playlist', ...media(PLAYLIST) } },
    errors: { 404: ['not_found'] },
  },
  ...RECORDING_IDS.flatMap((id): Route[] => [
    {
      method: 'get',
      path: `${RECORDINGS}${id}`,
      summary: 'Download a recording (HTTP range requests too)',
      access: 'read',
      query: noQuery,
      ok: {
        200: { description: 'The file', ...media('video/mp4', 'video/x-flv') },
        206: { description: 'The byte range asked for', ...media('video/mp4', 'video/x-flv') },
      },
      errors: { 404: ['recording_not_found'], 416: ['range_not_satisfiable'] },
    },
    {
      method: 'delete',
      path: `${RECORDINGS}${id}`,
      summary: 'Delete a recording',
      access: 'token',
      query: noQuery,
      ok: { 204: { description: 'Deleted', ...empty } },
      errors: { 404: ['recording_not_found'], 409: ['recording_in_progress'] },
    },
  ]),
  {
    method: 'get',
    path: '/:app/:key.flv',
    summary: 'HTTP-FLV playback: the stream as FLV, for as long as it lives',
    access: 'play',
    query: playCredentials,
    ok: { 200: { description: 'The FLV stream', ...media('video/x-flv') } },
    errors: { 400: ['invalid_stream_name'], 404: ['stream_not_found', 'not_found'] },
  },
  {
    method: 'get',
    path: '/:app/:key/index.m3u8',
    summary: 'HLS (fMP4, Low-Latency HLS when on): the live playlist; _HLS_msn/_HLS_part ask for a blocking reload',
    access: 'play',
    query: playCredentials.extend(blockingQuery.shape),
    ok: { 200: { description: 'The playlist', ...media(PLAYLIST) } },
    errors: {
      400: ['invalid_stream_name'],
      404: ['stream_not_found', 'hls_disabled', 'not_found'],
      415: ['unsupported_codec'],
      503: ['hls_capacity', 'hls_not_ready'],
    },
  },
  {
    method: 'get',
    path: '/:app/:key/master.m3u8',
    summary:
      'HLS multivariant playlist: the stream and its live renditions (transcodeRules), the credentials of the query in each variant URI',
    access: 'play',
    query: playCredentials,
    ok: { 200: { description: 'The multivariant playlist', ...media(PLAYLIST) } },
    errors: { 400: ['invalid_stream_name'], 404: ['stream_not_found', 'hls_disabled', 'not_found'] },
  },
  {
    method: 'get',
    path: '/:app/:key/:file',
    summary: 'HLS media a playlist lists: init sections, segments, LL-HLS parts',
    access: 'play',
    query: noQuery,
    params: { file: z.string().regex(MEDIA_FILE) },
    ok: { 200: { description: 'The media', ...media('video/mp4') } },
    errors: { 400: ['invalid_stream_name'], 404: ['not_found'] },
  },
];

/** Errors any route of an access can answer: a bad query, a refused token, a failure. */
function commonErrors(access: Access): Record<number, string[]> {
  const errors: Record<number, string[]> = { 400: ['bad_request'], 500: ['internal_error'] };
  if (access === 'read' || access === 'metrics') errors[401] = ['unauthorized', 'bad_token'];
  if (access === 'token') Object.assign(errors, { 401: ['unauthorized', 'bad_token'], 403: ['api_token_not_configured'] });
  // The play rules answer their reasons (auth/authorizer.ts) as codes.
  if (access === 'play') Object.assign(errors, { 401: [], 403: [] });
  return errors;
}

const SECURITY: Record<Access, object[]> = {
  open: [],
  read: [{}, { apiToken: [] }],
  metrics: [{}, { apiToken: [] }],
  token: [{ apiToken: [] }],
  play: [{}, { playToken: [] }],
};

const ACCESS_NOTE: Record<Access, string> = {
  open: 'Open to anyone.',
  read: 'Open unless `--api-read-access token`.',
  metrics: 'Open unless `--metrics-access token`.',
  token: 'Needs an API token (`--api-token-file`).',
  play: 'Decided by the play rules: credentials in the query (`secret`, `exp` and `sig`, `jwt`) or a JWT as the bearer token.',
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
  for (const route of routes) (paths[route.path.replace(/:(\w+)/g, '{$1}')] ??= {})[route.method] = operation(route, jsonSchema);
  return {
    openapi: '3.1.0',
    info: {
      title: 'rtmpd HTTP API',
      version,
      description:
        'The HTTP side of rtmpd: the stream, revocation and recording API, health, metrics, and HTTP-FLV/HLS playback. ' +
        'Query parameters are strict on the API: an unknown, repeated or invalid one is a 400 that names it. ' +
        'A method a path does not take is a 405 (`method_not_allowed`). Every error is JSON `{"error":{"code","message"}}`.',
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        apiToken: { type: 'http', scheme: 'bearer', description: 'A token from --api-token-file' },
        playToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A player JWT, when the play rules take JWTs' },
      },
    },
  };
}

function operation(route: Route, jsonSchema: ToJsonSchema): object {
  const pathParams = [...route.path.matchAll(/:(\w+)/g)].map(([, name = '']) => ({
    name,
    in: 'path',
    required: true,
    ...(route.params?.[name] ? parameterDescription(jsonSchema(route.params[name], 'input')) : {}),
    schema: route.params?.[name] ? jsonSchema(route.params[name], 'input') : { type: 'string' },
  }));
  const query = jsonSchema(route.query, 'input') as { properties?: Record<string, object>; required?: string[] };
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
  const header = '# Generated from rtmpd/src/http (openapi.ts and the schemas it names) by `make generate`; do not edit.\n';
  return header + stringify(openapiDocument(version), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** The same document as docs/api/openapi.json, the file rtmpd serves as it is (http/openapi-route.ts). */
export const openapiJson = (version: string): string => `${JSON.stringify(openapiDocument(version))}\n`;
