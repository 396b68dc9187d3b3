// rtmpd's configuration: one zod schema, fed (in rising priority) by defaults,
// an optional YAML/JSON config file, RTMPD_* environment variables and flags.
// The operator imports this module to render a pod's flags, so every option
// a pod can run with is declared here and nowhere else.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):(\d{1,5})$/, 'expected HOST:PORT, e.g. 0.0.0.0:1935')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

// Values from flags and env arrive as strings; these accept both forms.
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v))]);

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export const configSchema = z.object({
  rtmpBind: hostPort.default('0.0.0.0:1935').describe('RTMP listen address (HOST:PORT)'),
  httpBind: hostPort.default('0.0.0.0:8082').describe('HTTP listen address for the API, HTTP-FLV and /metrics (HOST:PORT)'),
  storageDir: z.string().min(1).default('./data/rtmp/storage').describe('directory for recordings'),
  keyframeDir: z
    .string()
    .min(1)
    .default('./data/rtmp/keyframes')
    .describe('directory for the latest keyframe and JPEG snapshot of each live stream'),
  logLevel: z
    .enum(logLevels)
    .default('info')
    .describe(`log level: ${logLevels.join(', ')}`),
  logFormat: z.enum(['json', 'pretty']).default('json').describe('log format: json (one object per line) or pretty (for a terminal)'),
  chunkSize: int(128, 65536)
    .default(60000)
    .describe(
      'outbound RTMP chunk size in bytes; large chunks (SRS also sends 60000) let most media messages go out as one header plus the body, uncopied',
    ),
  gopCacheMaxBytes: int(0, 256 * 1024 * 1024)
    .default(16 * 1024 * 1024)
    .describe('upper bound of the per-stream GOP cache that lets players start at the last keyframe; 0 disables the cache'),
  playWaitSeconds: int(0, 3600)
    .default(0)
    .describe(
      'how long a player of a stream that is not live waits for its publisher before NetStream.Play.StreamNotFound; 0 answers at once',
    ),
  playerMaxBufferBytes: int(64 * 1024, 256 * 1024 * 1024)
    .default(4 * 1024 * 1024)
    .describe('bytes queued for a slow player before it skips to the next keyframe'),
  playerStallTimeoutSeconds: int(1, 3600).default(30).describe('a player whose socket accepts nothing for this long is disconnected'),
  idleTimeoutSeconds: int(1, 3600)
    .default(30)
    .describe('a connection that moves no byte either way for this long (handshake included) is closed'),
  maxConnections: int(1, 1_000_000).default(10_000).describe('connections accepted at once over RTMP; more are refused'),
  recordingEnabled: bool.default(true).describe('record every published stream as FLV under --storage-dir'),
  snapshotEnabled: bool.default(true).describe('keep the last keyframe of each stream and serve JPEG snapshots'),
  snapshotIntervalSeconds: int(0, 86_400)
    .default(0)
    .describe('also write a timestamped JPEG of every live stream this often; 0 writes snapshots only on request'),
  snapshotKeep: int(1, 100_000).default(10).describe('timestamped JPEGs kept per stream when --snapshot-interval-seconds is set'),
  snapshotWidth: int(0, 7680).default(0).describe('snapshot width in pixels (height keeps the aspect ratio); 0 keeps the source width'),
  snapshotQuality: int(1, 31).default(3).describe('JPEG quality for ffmpeg -q:v, 1 (best) to 31 (smallest)'),
  snapshotConcurrency: int(1, 64).default(2).describe('snapshot decodes that may run at once'),
  ffmpegPath: z.string().min(1).default('ffmpeg').describe('ffmpeg binary used for snapshots'),
  metricsMaxStreams: int(0, 100_000)
    .default(200)
    .describe('streams that get their own per-stream metric series; the rest are summed under key="_overflow"'),
  shutdownGraceSeconds: int(0, 600).default(10).describe('on SIGTERM, how long in-flight responses may finish before rtmpd exits'),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigKey = keyof Config;

/** `rtmpBind` → `rtmp-bind`, the flag name. */
export const flagName = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** `rtmpBind` → `RTMPD_RTMP_BIND`, the environment variable name. */
export const envName = (key: string): string => `RTMPD_${flagName(key).replace(/-/g, '_').toUpperCase()}`;

export const configKeys = Object.keys(configSchema.shape) as ConfigKey[];

export class ConfigError extends Error {}

export interface LoadedArgs {
  config: Config;
  help: boolean;
  version: boolean;
}

/** Reads flags, environment and the optional config file into a validated Config. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    ...Object.fromEntries(configKeys.map((k) => [flagName(k), { type: 'string' as const }])),
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const raw: Record<string, unknown> = {};
  const file = (values.config as string | undefined) ?? env.RTMPD_CONFIG;
  if (file) Object.assign(raw, readConfigFile(file));
  for (const key of configKeys) {
    const fromEnv = env[envName(key)];
    if (fromEnv !== undefined && fromEnv !== '') raw[key] = fromEnv;
    const fromFlag = values[flagName(key)];
    if (fromFlag !== undefined) raw[key] = fromFlag;
  }
  // LOG_LEVEL is the variable the original product documented for verbose logs.
  if (raw.logLevel === undefined && env.LOG_LEVEL) raw.logLevel = env.LOG_LEVEL;
  return { config: parseConfig(raw), help: values.help === true, version: values.version === true };
}

/** Validates a raw object, naming the flag and variable of any bad option. */
export function parseConfig(raw: Record<string, unknown>): Config {
  const result = configSchema.strict().safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    if (issue.code === 'unrecognized_keys') return `unknown option(s): ${issue.keys.join(', ')}`;
    return `--${flagName(key)} (${envName(key)}): ${issue.message}, got ${JSON.stringify(raw[key])}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  const parsed: unknown = parseYaml(text);
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`config file ${path} must hold a mapping of option: value`);
  return parsed as Record<string, unknown>;
}

/** The --help text, generated from the schema so it can never drift from it. */
export function helpText(): string {
  const rows = configKeys.map((key) => {
    const field = configSchema.shape[key];
    const fallback = JSON.stringify(configSchema.shape[key].parse(undefined));
    return `  --${flagName(key)} <value>\n      ${field.description ?? ''} (default ${fallback}; env ${envName(key)})`;
  });
  return [
    'Usage: rtmpd [options]',
    '',
    'flux-rtmpd media server: RTMP ingest, RTMP and HTTP-FLV playback, recording, JPEG snapshots, HTTP API.',
    'Options come from flags, RTMPD_* environment variables and an optional YAML/JSON config file whose',
    'keys are the camelCase option names (rtmpBind: 0.0.0.0:1935); flags win over env, env over the file.',
    '',
    'Options:',
    '  --config <file>\n      YAML or JSON config file (env RTMPD_CONFIG)',
    ...rows,
    '  -h, --help\n      print this help',
    '  --version\n      print the version',
    '',
  ].join('\n');
}

/** Splits HOST:PORT (IPv6 in brackets) for net.Server.listen. */
export function splitHostPort(bind: string): { host: string; port: number } {
  const at = bind.lastIndexOf(':');
  return { host: bind.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(bind.slice(at + 1)) };
}
