// rtmpd's configuration as the pods get it: the options, rendered from the
// spec through rtmpd's own schema, split into the arguments the operator owns
// (listen addresses, mount paths) and the mounted config file with the rest;
// and which changes of that file rtmpd takes live. Secrets spec.auth,
// spec.webhooks, spec.forwards and spec.tls name are mounted, and only their paths enter the configuration.
import { createHash } from 'node:crypto';
import {
  authCallbackTimeoutMs,
  configSchema,
  flagName,
  reloadOf,
  type AuthRule,
  type Config,
  type ConfigKey,
} from '@flux-rtmpd/rtmpd/config';
import { parse, stringify } from 'yaml';
import { operatorOwnedOptions, passthroughOptions, type AuthRuleSpec, type RtmpServerSpec } from '../api/rtmpserver.ts';

export const mountPaths = {
  recordings: '/var/lib/rtmpd/recordings',
  keyframes: '/var/lib/rtmpd/keyframes',
  config: '/etc/rtmpd',
  tmp: '/tmp',
  /** Each Secret spec.auth, spec.webhooks or spec.tls names is mounted whole (never with subPath) at secrets/<name>, where the kubelet keeps it current. */
  secrets: '/etc/rtmpd-secrets',
} as const;
/** The key of rtmpd's config file in the ConfigMap, and so its name under mountPaths.config. */
export const configFileName = 'rtmpd.yaml';

/** The rtmpd options the pods run with: typed fields, operator-owned binds and dirs, and every set spec.rtmpd option. */
export function rtmpdConfig(spec: RtmpServerSpec): Partial<Config> {
  const config: Partial<Config> = {
    rtmpBind: `0.0.0.0:${spec.ports.rtmp}`,
    httpBind: `0.0.0.0:${spec.ports.http}`,
    ...(livenessPort(spec) === 'health' ? { healthBind: `0.0.0.0:${spec.ports.health}` } : {}),
    storageDir: mountPaths.recordings,
    keyframeDir: mountPaths.keyframes,
    logLevel: spec.logLevel,
    recordingEnabled: spec.recording.enabled,
    recordingFormat: spec.recording.format,
    recordingSegmentSeconds: spec.recording.segmentSeconds,
    recordingMaxAgeHours: spec.recording.maxAgeHours,
    recordingMaxBytes: spec.recording.maxBytes,
    recordingRules: spec.recording.rules,
    hlsEnabled: spec.hls.enabled,
    hlsLowLatency: spec.hls.lowLatency,
    hlsVariant: spec.hls.variant,
    hlsSegmentSeconds: spec.hls.segmentSeconds,
    hlsPartSeconds: spec.hls.partSeconds,
    hlsWindowSegments: spec.hls.windowSegments,
    hlsRules: spec.hls.rules,
    transcodeRules: spec.transcode.rules,
    transcodeFfmpegPath: spec.transcode.ffmpegPath,
    transcodeMaxProcesses: spec.transcode.maxProcesses,
    snapshotEnabled: spec.snapshot.enabled,
    snapshotIntervalSeconds: spec.snapshot.intervalSeconds,
    snapshotWidth: spec.snapshot.width,
    snapshotQuality: spec.snapshot.quality,
    snapshotKeep: spec.snapshot.keep,
    ...authConfig(spec),
    webhookSecretFile: spec.webhooks.secret ? secretPath(spec.webhooks.secret.name, spec.webhooks.secret.key) : '',
    ...forwardConfig(spec),
    ...tlsConfig(spec),
    ...proxyProtocolConfig(spec),
  };
  const extra = spec.rtmpd as Partial<Record<ConfigKey, unknown>>;
  for (const key of passthroughOptions) {
    if (extra[key] !== undefined) (config as Record<string, unknown>)[key] = extra[key];
  }
  return config;
}

/** The container port the liveness probe asks: health, served by rtmpd's --health-bind thread (the default), or http. */
export const livenessPort = (spec: Pick<RtmpServerSpec, 'probes'>) => spec.probes?.liveness?.port ?? 'health';

// ---- authorization -------------------------------------------------------------

export const secretPath = (name: string, key?: string) => `${mountPaths.secrets}/${name}${key === undefined ? '' : `/${key}`}`;

/** One spec.auth rule as rtmpd's rule, its Secrets replaced by the paths they are mounted at. */
function authRule(rule: AuthRuleSpec): AuthRule {
  const base = { app: rule.app ?? '*', key: rule.key ?? '*', actions: rule.actions ?? ['publish', 'play'] };
  switch (rule.method) {
    case 'open':
      return { ...base, method: 'open' };
    case 'keys':
      return { ...base, method: 'keys', keys: secretPath(rule.keysSecret?.name ?? '') };
    case 'signed':
      return { ...base, method: 'signed', secretFile: secretPath(rule.secret?.name ?? '', rule.secret?.key) };
    case 'jwt':
      return {
        ...base,
        method: 'jwt',
        ...(rule.jwksUrl ? { jwksUrl: rule.jwksUrl } : { keyFile: secretPath(rule.keySecret?.name ?? '', rule.keySecret?.key) }),
        ...(rule.issuer ? { issuer: rule.issuer } : {}),
        ...(rule.audience ? { audience: rule.audience } : {}),
      };
    case 'callback':
      return {
        ...base,
        method: 'callback',
        ...(rule.url ? { url: rule.url } : { urlFile: secretPath(rule.urlSecret?.name ?? '', rule.urlSecret?.key) }),
        timeoutMs: rule.timeoutMs ?? authCallbackTimeoutMs,
        cacheSeconds: rule.cacheSeconds ?? 10,
        failOpen: rule.failOpen ?? false,
      };
  }
}

/** rtmpd's auth options from spec.auth: paths into the mounted Secrets, never their contents. */
function authConfig(spec: RtmpServerSpec): Partial<Config> {
  const { auth } = spec;
  return {
    authRules: (auth.rules ?? []).map(authRule),
    apiTokenFile: auth.apiTokenSecret ? secretPath(auth.apiTokenSecret.name, auth.apiTokenSecret.key) : '',
    apiReadAccess: auth.apiReadAccess,
    metricsAccess: auth.metricsAccess,
  };
}

/** rtmpd's forward options from spec.forwards: the rules, their Secrets as the paths they are mounted at. */
function forwardConfig({ forwards }: RtmpServerSpec): Partial<Config> {
  return {
    forwardRules: (forwards.rules ?? []).map((rule) => ({
      app: rule.app ?? '*',
      key: rule.key ?? '*',
      urls: rule.urls ?? [],
      urlFiles: (rule.urlSecrets ?? []).map((secret) => secretPath(secret.name, secret.key)),
    })),
    forwardTlsCaFile: forwards.caSecret ? secretPath(forwards.caSecret.name, forwards.caSecret.key) : '',
  };
}

/** rtmpd's TLS options from spec.tls: the ports, and the paths of the mounted Secret's tls.crt and tls.key. */
function tlsConfig({ tls }: RtmpServerSpec): Partial<Config> {
  if (!tls) return {};
  return {
    rtmpsBind: `0.0.0.0:${tls.rtmpsPort}`,
    httpsBind: tls.https ? `0.0.0.0:${tls.httpsPort}` : '',
    tlsCertFile: secretPath(tls.secretName, 'tls.crt'),
    tlsKeyFile: secretPath(tls.secretName, 'tls.key'),
  };
}

/** rtmpd's PROXY protocol options from spec.service.proxyProtocol. */
function proxyProtocolConfig({ service }: RtmpServerSpec): Partial<Config> {
  const proxy = service.proxyProtocol;
  return proxy ? { proxyProtocol: proxy.listeners, proxyProtocolFrom: proxy.from } : {};
}

/** How rtmpd reads a Secret it is given, which is how the operator checks it (controller/secrets.ts). */
export type SecretFormat =
  'keyStore' | 'hmacSecrets' | 'jwtKey' | 'callbackUrl' | 'apiTokens' | 'webhookKeys' | 'tlsPair' | 'caBundle' | 'file';

/** A Secret the spec names: the field that names it, the keys rtmpd reads (none: the whole Secret, a directory) and their format. */
export interface SecretReference {
  name: string;
  field: string;
  keys: string[];
  format: SecretFormat;
}

/** Every Secret spec.auth, spec.webhooks, spec.forwards and spec.tls name, with the field that names it (for a clear message when one is missing or unusable). */
export function referencedSecrets(spec: RtmpServerSpec): SecretReference[] {
  const refs: SecretReference[] = [];
  const keyed = (ref: { name: string; key: string }, field: string, format: SecretFormat) =>
    refs.push({ name: ref.name, field, keys: [ref.key], format });
  (spec.auth.rules ?? []).forEach((rule, i) => {
    const at = `spec.auth.rules[${i}]`;
    if (rule.method === 'keys' && rule.keysSecret)
      refs.push({ name: rule.keysSecret.name, field: `${at}.keysSecret`, keys: [], format: 'keyStore' });
    if (rule.method === 'signed' && rule.secret) keyed(rule.secret, `${at}.secret`, 'hmacSecrets');
    if (rule.method === 'jwt' && !rule.jwksUrl && rule.keySecret) keyed(rule.keySecret, `${at}.keySecret`, 'jwtKey');
    if (rule.method === 'callback' && !rule.url && rule.urlSecret) keyed(rule.urlSecret, `${at}.urlSecret`, 'callbackUrl');
  });
  if (spec.auth.apiTokenSecret) keyed(spec.auth.apiTokenSecret, 'spec.auth.apiTokenSecret', 'apiTokens');
  if (spec.webhooks.secret) keyed(spec.webhooks.secret, 'spec.webhooks.secret', 'webhookKeys');
  (spec.forwards.rules ?? []).forEach((rule, i) =>
    (rule.urlSecrets ?? []).forEach((secret, j) => keyed(secret, `spec.forwards.rules[${i}].urlSecrets[${j}]`, 'file')),
  );
  if (spec.forwards.caSecret) keyed(spec.forwards.caSecret, 'spec.forwards.caSecret', 'caBundle');
  if (spec.tls) refs.push({ name: spec.tls.secretName, field: 'spec.tls.secretName', keys: ['tls.crt', 'tls.key'], format: 'tlsPair' });
  return refs;
}

const isOwned = (key: ConfigKey) => (operatorOwnedOptions as readonly ConfigKey[]).includes(key);
const pick = (config: Partial<Config>, keep: (key: ConfigKey) => boolean): Partial<Config> =>
  Object.fromEntries(
    (Object.keys(configSchema.shape) as ConfigKey[]).filter((k) => config[k] !== undefined && keep(k)).map((k) => [k, config[k]]),
  );

/**
 * rtmpd's arguments: the mounted config file, and the options the operator
 * owns (listen addresses and mount paths), which are the pod's, not the
 * configuration's. Named by rtmpd's own flagName(), in schema order.
 */
export function rtmpdArgs(config: Partial<Config>): string[] {
  const owned = pick(config, isOwned);
  return [`--config=${mountPaths.config}/${configFileName}`, ...Object.entries(owned).map(([k, v]) => `--${flagName(k)}=${String(v)}`)];
}

/** The ConfigMap's content: every other option, in rtmpd's config-file format. */
export const configFile = (config: Partial<Config>): string =>
  stringify(
    pick(config, (k) => !isOwned(k)),
    { lineWidth: 0 },
  );

/** Which options differ between the config file the pods have (the ConfigMap's text) and the desired one, by how rtmpd takes them. */
export function configChanges(current: string | undefined, config: Partial<Config>): Record<'live' | 'restart', ConfigKey[]> {
  let before: Record<string, unknown> = {};
  try {
    before = (parse(current ?? '') as Record<string, unknown> | null) ?? {};
  } catch {
    // an unreadable file counts as empty: every option is a change
  }
  const after = pick(config, (k) => !isOwned(k)) as Record<string, unknown>;
  const changed = (Object.keys(configSchema.shape) as ConfigKey[]).filter(
    (k) => !isOwned(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return { live: changed.filter((k) => reloadOf(k) === 'live'), restart: changed.filter((k) => reloadOf(k) === 'restart') };
}

/**
 * A hash of the options a running rtmpd cannot take live: the pod template
 * carries it, so changing one of those rolls the pods, while a live option
 * only changes the mounted file, which rtmpd re-reads.
 */
export const restartChecksum = (config: Partial<Config>): string =>
  createHash('sha256')
    .update(JSON.stringify(pick(config, (k) => !isOwned(k) && reloadOf(k) === 'restart')))
    .digest('hex');
