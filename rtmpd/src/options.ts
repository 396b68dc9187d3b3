// A program's options from one zod object schema: read (in rising priority)
// from the schema's defaults, an optional YAML/JSON file, environment
// variables and flags, validated once, with errors that name the flag and
// variable. rtmpd (config.ts) and the operator (operator/src/flags.ts) both
// declare their options this way, so defaults, --help and the checks are
// written once per option.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseYaml } from './yaml.ts';
import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A boolean that flags and environment variables may also spell as true/false, 1/0, yes/no. */
export const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v)),
]);

const DECIMAL_TEXT = { whole: /^\d+$/, fraction: /^\d+(\.\d+)?$/ };

/**
 * A number given as text (a flag, a variable, a query parameter) to its value
 * when it is plain decimal digits (with a fraction unless `whole`); any other
 * text stays text, for the schema to refuse. Not `Number()` (nor `z.coerce`),
 * which reads '' as 0 and takes `1e2`, `0x10`, `+5` and ` 5 `.
 */
export function fromDecimalText(value: unknown, whole: boolean): unknown {
  return typeof value === 'string' && DECIMAL_TEXT[whole ? 'whole' : 'fraction'].test(value) ? Number(value) : value;
}

/**
 * A number from `min` to `max`, whole or not, with one message saying what it
 * takes whatever is wrong with it. It stays a plain `z.number()` (the operator
 * reads its bounds for the CRD); text reaches it through fromDecimalText.
 */
export function decimalNumber(min: number, max: number, { whole }: { whole: boolean }) {
  const error = `expected ${whole ? 'a whole number' : 'a number'} from ${min} to ${max} in decimal digits`;
  const number = z.number({ error }).min(min, { error }).max(max, { error });
  return whole ? number.int({ error }) : number;
}

/** A list, or one string of items separated by commas (and spaces). */
export const commaList = <Item extends z.ZodType>(item: Item, max: number) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((v) => v.trim())
            .filter((v) => v !== '')
        : value,
    z.array(item).max(max),
  );

export interface OptionSet<S extends z.ZodObject> {
  schema: S;
  /** The environment variable that sets an option; undefined: none does. */
  envName: (key: string) => string | undefined;
  /** Older variables read only when nothing else sets an option (rtmpd's LOG_LEVEL). */
  fallbackEnv?: Readonly<Record<string, string>>;
  /** The flag and variable that name a YAML/JSON file of options, keyed by their schema names. */
  configFile?: { flag: string; env: string };
}

export interface Loaded<T> {
  options: T;
  help: boolean;
  version: boolean;
  /** The options file read, if any. */
  file?: string;
}

/** `rtmpBind` → `rtmp-bind`, the flag name. */
export const flagName = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const unwrap = (field: z.core.$ZodType): z.core.$ZodType => {
  let inner = field;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional || inner instanceof z.ZodPipe) {
    inner = inner instanceof z.ZodPipe ? inner.def.in : inner.def.innerType;
  }
  return inner;
};

/** Options a bare `--flag` switches on (booleans); every other flag takes a value. */
const isSwitch = (field: z.core.$ZodType): boolean => {
  const inner = unwrap(field);
  return inner instanceof z.ZodBoolean || (inner instanceof z.ZodUnion && inner.options.some((o) => o instanceof z.ZodBoolean));
};

const booleanWords = new Set(['true', 'false', '1', '0', 'yes', 'no']);

/** `--switch` alone means true; `--switch false` and `--switch=false` keep their value (every option is read as a string). */
function switchValues(argv: readonly string[], switches: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--') || !switches.has(arg.slice(2))) {
      out.push(arg);
      continue;
    }
    const next = argv[i + 1];
    const value = next !== undefined && booleanWords.has(next) ? next : 'true';
    if (value === next) i++;
    out.push(`${arg}=${value}`);
  }
  return out;
}

/** Reads flags, the environment and the options file into validated options. */
export function loadOptions<S extends z.ZodObject>(set: OptionSet<S>, argv: readonly string[], env: NodeJS.ProcessEnv): Loaded<z.infer<S>> {
  const keys = Object.keys(set.schema.shape);
  const switches = new Set(keys.filter((k) => isSwitch(set.schema.shape[k] as z.core.$ZodType)).map(flagName));
  const args = switchValues(argv, switches);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    ...Object.fromEntries(keys.map((k) => [flagName(k), { type: 'string' as const }])),
    ...(set.configFile ? { [set.configFile.flag]: { type: 'string' as const } } : {}),
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const raw: Record<string, unknown> = {};
  for (const [key, variable] of Object.entries(set.fallbackEnv ?? {})) {
    if (env[variable]) raw[key] = env[variable];
  }
  const file = set.configFile && ((values[set.configFile.flag] as string | undefined) ?? (env[set.configFile.env] || undefined));
  if (file) Object.assign(raw, readOptionsFile(file));
  for (const key of keys) {
    const variable = set.envName(key);
    const fromEnv = variable === undefined ? undefined : env[variable];
    if (fromEnv !== undefined && fromEnv !== '') raw[key] = fromEnv;
    const fromFlag = values[flagName(key)];
    if (fromFlag !== undefined) raw[key] = fromFlag;
  }
  return { options: parseOptions(set, raw), help: values.help === true, version: values.version === true, ...(file ? { file } : {}) };
}

/** Validates raw options, naming the flag and variable of any bad one. */
export function parseOptions<S extends z.ZodObject>(set: OptionSet<S>, raw: Record<string, unknown>): z.infer<S> {
  const result = set.schema.strict().safeParse(numbersFromText(set.schema, raw));
  if (result.success) return result.data as z.infer<S>;
  const lines = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) return `unknown option(s): ${issue.keys.join(', ')}`;
    // A rule across options (rtmpd's contradictions) names them itself.
    if (issue.path.length === 0) return issue.message;
    const variable = set.envName(key);
    // Inside a structured option (rtmpd's authRules), say where and leave out the whole value: `[0].keys: ...`.
    const inner = issue.path
      .slice(1)
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    const detail = inner ? `${inner}: ${issue.message}` : `${issue.message}, got ${JSON.stringify(raw[key])}`;
    return `--${flagName(key)}${variable ? ` (${variable})` : ''}: ${detail}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

/** Raw options with the text of every number option read as decimal digits (fromDecimalText). */
function numbersFromText(schema: z.ZodObject, raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(raw).map(([key, value]) => {
      const field = schema.shape[key] && unwrap(schema.shape[key]);
      return [key, field instanceof z.ZodNumber ? fromDecimalText(value, field.isInt) : value];
    }),
  );
}

/** A YAML or JSON file holding a mapping of option: value. */
function readOptionsFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`config file ${path} must hold a mapping of option: value`);
  return parsed as Record<string, unknown>;
}

/** The option's default as the program would use it. */
export const optionDefault = (set: OptionSet<z.ZodObject>, key: string): unknown => (set.schema.shape[key] as z.ZodType).parse(undefined);

/** A Markdown table of the options (flag, variable, default, any extra columns, meaning), for the READMEs (make generate). */
export function optionsTable(set: OptionSet<z.ZodObject>, extra: Record<string, (key: string) => string> = {}): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = Object.keys(set.schema.shape).map((key) => {
    const variable = set.envName(key);
    const fallback = optionDefault(set, key);
    return [
      `\`--${flagName(key)}\``,
      variable ? `\`${variable}\`` : '',
      fallback === undefined ? '' : `\`${JSON.stringify(fallback)}\``,
      ...Object.values(extra).map((column) => column(key)),
      cell((set.schema.shape[key] as z.ZodType).description ?? ''),
    ];
  });
  const header = ['flag', 'environment', 'default', ...Object.keys(extra), 'meaning'];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** --help: the intro lines, then every option with its description, default and variable. */
export function optionsHelp(set: OptionSet<z.ZodObject>, intro: readonly string[]): string {
  const rows = Object.keys(set.schema.shape).map((key) => {
    const field = set.schema.shape[key] as z.ZodType;
    const variable = set.envName(key);
    const fallback = optionDefault(set, key);
    const facts = [...(fallback === undefined ? [] : [`default ${JSON.stringify(fallback)}`]), ...(variable ? [`env ${variable}`] : [])];
    const value = isSwitch(field) ? '' : ' <value>';
    return `  --${flagName(key)}${value}\n      ${field.description ?? ''}${facts.length ? ` (${facts.join('; ')})` : ''}`;
  });
  const file = set.configFile
    ? [`  --${set.configFile.flag} <file>\n      YAML or JSON file of options, keyed by their camelCase names (env ${set.configFile.env})`]
    : [];
  return [
    ...intro,
    '',
    'Options:',
    ...file,
    ...rows,
    '  -h, --help\n      print this help',
    '  --version\n      print the version',
    '',
  ].join('\n');
}
