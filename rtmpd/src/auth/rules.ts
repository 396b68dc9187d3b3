// Who may publish and play what: an ordered list of rules in rtmpd's config
// (`authRules`). A publish or play takes the first rule whose actions, app
// pattern and key pattern match it, and that rule's method decides. With no
// rules at all everything is open; once there are rules, a request no rule
// matches is refused.
import { z } from 'zod';

export const ACTIONS = ['publish', 'play'] as const;
export type AuthAction = (typeof ACTIONS)[number];

/** An app or key pattern: the stream-name alphabet plus `*` (any run of characters) and `?` (one character). */
export const namePattern = z
  .string()
  .regex(/^[A-Za-z0-9_.*?-]{1,128}$/, 'expected 1-128 characters of A-Z a-z 0-9 _ . - with * and ? as wildcards');

const path = z.string().min(1).max(4096);
const seconds = (max: number) => z.int().min(0).max(max);

const matched = {
  app: namePattern.default('*').describe('app pattern, e.g. live or team-*'),
  key: namePattern.default('*').describe('stream key pattern, e.g. cam-*'),
  actions: z
    .array(z.enum(ACTIONS))
    .min(1)
    .default([...ACTIONS])
    .describe('which of publish and play the rule covers'),
};

const openRule = z.object({ ...matched, method: z.literal('open') }).strict();

const keysRule = z
  .object({
    ...matched,
    method: z.literal('keys'),
    keys: path.describe(
      'a YAML/JSON file of stream key: secret (or a list of secrets), or a directory with one file per stream key holding its secrets, one per line (a mounted Secret)',
    ),
  })
  .strict();

const signedRule = z
  .object({
    ...matched,
    method: z.literal('signed'),
    secretFile: path.describe('file holding the HMAC-SHA256 secret; several lines are several valid secrets (rotation)'),
  })
  .strict();

const jwtRule = z
  .object({
    ...matched,
    method: z.literal('jwt'),
    jwksUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('JWKS URL the signing keys are fetched from'),
    keyFile: path
      .optional()
      .describe('file holding the verification key: a JWKS or JWK (JSON), a PEM public key, or an HMAC secret for HS256/384/512'),
    issuer: z.string().min(1).optional().describe('required iss claim'),
    audience: z.string().min(1).optional().describe('required aud claim'),
  })
  .strict()
  .refine((rule) => (rule.jwksUrl === undefined) !== (rule.keyFile === undefined), 'a jwt rule needs exactly one of jwksUrl and keyFile');

/** How long a callback rule waits for its answer unless it says otherwise. */
export const CALLBACK_TIMEOUT_MS = 2000;

const callbackRule = z
  .object({
    ...matched,
    method: z.literal('callback'),
    url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('URL the decision is POSTed to'),
    urlFile: path.optional().describe('file holding that URL (when it carries a credential)'),
    timeoutMs: z
      .number()
      .int()
      .min(50)
      .max(10_000)
      .default(CALLBACK_TIMEOUT_MS)
      .describe('how long to wait for an answer; less than --idle-timeout-seconds, which closes a connection whose admission takes longer'),
    cacheSeconds: seconds(3600).default(10).describe('how long an allow or deny answer is reused for the same request; 0: never'),
    failOpen: z.boolean().default(false).describe('allow when the callback cannot be reached or fails (default: refuse)'),
  })
  .strict()
  .refine((rule) => (rule.url === undefined) !== (rule.urlFile === undefined), 'a callback rule needs exactly one of url and urlFile');

const authRuleSchema = z.discriminatedUnion('method', [openRule, keysRule, signedRule, jwtRule, callbackRule]);
export type AuthRule = z.infer<typeof authRuleSchema>;
export type AuthMethodName = AuthRule['method'];

/** A list from the config file (a list) or from a flag or variable (the same list as JSON), at most 256 entries. */
export function jsonList<Item extends z.ZodType>(item: Item) {
  return z.preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    if (value.trim() === '') return [];
    try {
      return JSON.parse(value) as unknown;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON (${(err as Error).message})`, input: value });
      return z.NEVER;
    }
  }, z.array(item).max(256));
}

export const authRulesSchema = jsonList(authRuleSchema);

/** A glob of `*` and `?` as an anchored regular expression. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\-]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export interface CompiledRule<R extends AuthRule = AuthRule> {
  rule: R;
  /** Position in authRules, for logs. */
  index: number;
  matches(action: AuthAction, app: string, key: string): boolean;
}

export function compileRule<R extends AuthRule>(rule: R, index: number): CompiledRule<R> {
  const app = globToRegExp(rule.app);
  const key = globToRegExp(rule.key);
  return { rule, index, matches: (action, a, k) => rule.actions.includes(action) && app.test(a) && key.test(k) };
}
