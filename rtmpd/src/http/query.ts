// Query parameters at the edge of the HTTP API. Each route names what it
// takes in one zod object (routing.ts), parsed strictly: a parameter it does
// not take, one given twice, or a bad value is a 400 naming the parameter, so
// a typo (`?from=` for `?start=`) is refused rather than silently ignored.
// The playback routes ignore the parameters they do not name instead.
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { decimalNumber, fromDecimalText } from '../options.ts';
import { ApiError } from './errors.ts';

/** What a route without query parameters takes. */
export const noQuery = z.object({});

/**
 * A whole-number parameter from `min` to `max`, in plain decimal digits, the
 * same rule as rtmpd's numeric options (options.ts): an empty value
 * (`?_HLS_msn=`), `1e3`, `0x10`, `+5` and ` 12 ` are refused with one message.
 */
export const wholeNumber = (min: number, max: number) =>
  z.preprocess((value) => fromDecimalText(value, true), decimalNumber(min, max, { whole: true }));

/** A query as Koa parses it: a parameter given more than once is an array. */
type RawQuery = Record<string, string | string[] | undefined>;

/**
 * Parses a query by `schema`: an invalid or repeated parameter throws a 400
 * that names it, and so does one it does not name, unless `others` is
 * `ignore` (see routing.ts).
 */
export function queryParser<S extends z.ZodObject>(schema: S, others: 'refuse' | 'ignore' = 'refuse'): (query: RawQuery) => z.infer<S> {
  const parser = others === 'refuse' ? schema.strict() : schema;
  const known = Object.keys(schema.shape);
  const takes = known.length === 0 ? 'this endpoint takes none' : `this endpoint takes ${known.join(', ')}`;
  return (query) => {
    const result = parser.safeParse(query);
    if (result.success) return result.data as z.infer<S>;
    const { issues } = result.error;
    // An unknown name first: it is the likely typo behind the rest.
    const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const names = issue.keys.map((k) => JSON.stringify(k)).join(', ');
      throw new ApiError(400, 'bad_request', `unknown query parameter ${names}; ${takes}`);
    }
    const name = String(issue.path[0]);
    if (Array.isArray(query[name])) throw new ApiError(400, 'bad_request', `query parameter "${name}" is given more than once`);
    throw new ApiError(400, 'bad_request', `query parameter "${name}": ${issue.message}`);
  };
}

/**
 * Refuses a request body on the API and fleet paths: no endpoint there reads
 * one, so `PUT ...revocations/<id>` with `{"seconds":60}` would otherwise
 * revoke until restart. An empty body (`Content-Length: 0`) is no body.
 */
export async function refuseBody(ctx: Context, next: Next): Promise<void> {
  const { headers } = ctx.req;
  const hasBody = headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) !== 0;
  if (hasBody && (ctx.path.startsWith('/api/') || ctx.path.startsWith('/fleet/')))
    throw new ApiError(400, 'bad_request', `${ctx.method} ${ctx.path} takes no request body; give its parameters in the query`);
  await next();
}
