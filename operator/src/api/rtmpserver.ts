// The RtmpServer resource: one zod schema for spec and status. The CRD in
// crds/ is generated from it (crd.ts), the controller parses with it, and the
// README's field reference is printed from it (docs.ts).
import {
  authActions,
  authCallbackTimeoutMs,
  authNamePattern,
  CLAIM_WAIT_MARGIN_SECONDS,
  configDefault,
  configKeys,
  configSchema,
  flagName,
  hlsRule,
  lowLatencyNeedsFmp4,
  transcodeRule,
  recordingRule,
  type Config,
  type ConfigKey,
} from '@flux-rtmpd/rtmpd/config';
import { z } from 'zod';
import {
  affinity,
  annotations,
  cel,
  labels,
  objectName,
  podSecurityContext,
  probes,
  intOrPercent,
  resources,
  securityContext,
  size,
  toleration,
  topologySpreadConstraint,
  type CelRule,
} from './core.ts';

export const group = 'media.fluxiot.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;
export const kind = 'RtmpServer';
export const plural = 'rtmpservers';
export const singular = 'rtmpserver';
export const shortNames = ['rtmp'];

const port = z.int().min(1).max(65535);

// ---- options that come straight from rtmpd's config schema -------------------

/**
 * The operator-facing zod type of one rtmpd option: same range, values and
 * description as rtmpd's schema, but in the typed form a CRD can state (rtmpd
 * also accepts strings from flags and env; a resource holds real numbers and
 * booleans). Throws for an option kind it does not know, so a new kind of
 * option in rtmpd fails the unit tests instead of vanishing from the CRD.
 */
export function rtmpdOption<K extends ConfigKey>(key: K): z.ZodType<Config[K]> {
  const field = configSchema.shape[key];
  let inner: z.core.$ZodType = field;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) {
    inner = inner.def.innerType;
  }
  const description = field.description ?? '';
  let typed: z.ZodType;
  if (inner instanceof z.ZodNumber) {
    let n = inner.isInt ? z.int() : z.number();
    if (inner.minValue !== null && Number.isFinite(inner.minValue) && Math.abs(inner.minValue) < Number.MAX_SAFE_INTEGER)
      n = n.min(inner.minValue);
    if (inner.maxValue !== null && Number.isFinite(inner.maxValue) && Math.abs(inner.maxValue) < Number.MAX_SAFE_INTEGER)
      n = n.max(inner.maxValue);
    typed = n;
  } else if (inner instanceof z.ZodEnum) {
    typed = z.enum(inner.options as [string, ...string[]]);
  } else if (inner instanceof z.ZodString) {
    let t = z.string().min(inner.minLength ?? 0);
    if (inner.maxLength !== null) t = t.max(inner.maxLength);
    typed = t;
  } else if (inner instanceof z.ZodUnion && inner.options.some((o) => o instanceof z.ZodBoolean)) {
    typed = z.boolean();
  } else if (inner instanceof z.ZodPipe && inner.def.out instanceof z.ZodArray) {
    // A list flags give as one comma-separated string (webhookUrls): a resource holds the list.
    typed = z.array(listItem(key, inner.def.out.element)).max(z.toJSONSchema(inner.def.out).maxItems ?? 256);
  } else {
    throw new Error(`rtmpd option ${key}: no CRD mapping for ${inner.constructor.name}`);
  }
  return typed.describe(description) as unknown as z.ZodType<Config[K]>;
}

/** An item of a list option: an http(s) URL, one of an enum's values, or a string of a pattern (a CIDR range: rtmpd checks the rest). */
function listItem(key: string, item: z.core.$ZodType): z.ZodType {
  if (item instanceof z.ZodEnum) return z.enum(item.options as [string, ...string[]]);
  if (item instanceof z.ZodString && item.maxLength !== null) {
    const { pattern } = z.toJSONSchema(item) as { pattern?: string };
    const text = z.string().max(item.maxLength);
    return pattern === undefined ? text : text.regex(new RegExp(pattern));
  }
  if (item instanceof z.ZodURL)
    return z
      .string()
      .max(item.maxLength ?? 2048)
      .regex(/^https?:\/\//);
  throw new Error(`rtmpd option ${key}: no CRD mapping for a list of ${item.constructor.name}`);
}

/** An rtmpd option with rtmpd's default, so `kubectl get -o yaml` shows it. */
const rtmpdOptionWithDefault = <K extends ConfigKey>(key: K) => rtmpdOption(key).default(configDefault(key) as never);

/** Options the operator sets itself: the pod's listen addresses and mount paths, and who the pod is in its fleet. */
export const operatorOwnedOptions = [
  'rtmpBind',
  'httpBind',
  'healthBind',
  'storageDir',
  'keyframeDir',
  'fleetName',
  'fleetPodName',
  'fleetPodUid',
  'fleetNamespace',
  'fleetPodIp',
  'fleetTokenFile',
] as const satisfies readonly ConfigKey[];
/**
 * Options rendered from spec.auth: rules and token files pointing at the
 * Secrets the operator mounts (the config file carries paths, never a secret).
 */
export const authOptions = ['authRules', 'apiTokenFile', 'apiReadAccess', 'metricsAccess'] as const satisfies readonly ConfigKey[];
/** Options rendered from spec.webhooks: the signing key's path in the mounted Secret. */
export const webhookOptions = ['webhookSecretFile'] as const satisfies readonly ConfigKey[];
/** Options rendered from spec.forwards: rules whose destination URLs may come from mounted Secrets, and a CA's path in one. */
export const forwardOptions = ['forwardRules', 'forwardTlsCaFile'] as const satisfies readonly ConfigKey[];
/** Options rendered from spec.tls: the listen addresses and the mounted certificate's paths. */
export const tlsOptions = ['rtmpsBind', 'httpsBind', 'tlsCertFile', 'tlsKeyFile'] as const satisfies readonly ConfigKey[];
/** Options rendered from spec.service.proxyProtocol. */
export const proxyProtocolOptions = ['proxyProtocol', 'proxyProtocolFrom'] as const satisfies readonly ConfigKey[];
/** Options with their own typed field in the spec. */
export const typedOptions = {
  logLevel: 'spec.logLevel',
  recordingEnabled: 'spec.recording.enabled',
  recordingFormat: 'spec.recording.format',
  recordingSegmentSeconds: 'spec.recording.segmentSeconds',
  recordingMaxAgeHours: 'spec.recording.maxAgeHours',
  recordingMaxBytes: 'spec.recording.maxBytes',
  recordingRules: 'spec.recording.rules',
  hlsEnabled: 'spec.hls.enabled',
  hlsLowLatency: 'spec.hls.lowLatency',
  hlsVariant: 'spec.hls.variant',
  hlsSegmentSeconds: 'spec.hls.segmentSeconds',
  hlsPartSeconds: 'spec.hls.partSeconds',
  hlsWindowSegments: 'spec.hls.windowSegments',
  hlsRules: 'spec.hls.rules',
  transcodeRules: 'spec.transcode.rules',
  transcodeFfmpegPath: 'spec.transcode.ffmpegPath',
  transcodeMaxProcesses: 'spec.transcode.maxProcesses',
  snapshotEnabled: 'spec.snapshot.enabled',
  snapshotIntervalSeconds: 'spec.snapshot.intervalSeconds',
  snapshotWidth: 'spec.snapshot.width',
  snapshotQuality: 'spec.snapshot.quality',
  snapshotKeep: 'spec.snapshot.keep',
} as const satisfies Partial<Record<ConfigKey, string>>;
/** Every other rtmpd option: set through spec.rtmpd, unset means rtmpd's default. */
export const passthroughOptions = configKeys.filter(
  (k) =>
    !(
      [
        ...operatorOwnedOptions,
        ...authOptions,
        ...webhookOptions,
        ...forwardOptions,
        ...tlsOptions,
        ...proxyProtocolOptions,
      ] as readonly string[]
    ).includes(k) && !(k in typedOptions),
);

const passthroughSchema = z.object(
  Object.fromEntries(
    passthroughOptions.map((k) => {
      const o = rtmpdOption(k);
      return [
        k,
        o.optional().describe(`${o.description} (rtmpd flag --${flagName(k)}; unset: rtmpd's default ${JSON.stringify(configDefault(k))})`),
      ];
    }),
  ),
);
const passthroughDescription =
  "rtmpd tuning options without a typed field above, by the camelCase names of rtmpd's config file; unset options keep rtmpd's defaults";

// ---- authorization ----------------------------------------------------------------

const secretName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
  .max(253)
  .describe('name of a Secret in the RtmpServer namespace');
const secretKeySelector = (what: string) =>
  z
    .object({
      name: secretName,
      key: z
        .string()
        .regex(/^[-._a-zA-Z0-9]+$/)
        .max(253)
        .describe('key in the Secret'),
    })
    .describe(what);
// The CRD's `format: uri` admits any scheme (file:, ftp:), no host (http://) and any port:
// the rule refuses at admission what the operator's parse would refuse later.
const httpUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .meta(
    cel({
      rule: "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != '' && (url(self).getPort() == '' || int(url(self).getPort()) <= 65535)",
      message: 'must be an http:// or https:// URL with a host (and a port of at most 65535)',
    }),
  );
const rtmpdAccess = (key: 'apiReadAccess' | 'metricsAccess') => rtmpdOptionWithDefault(key);
const whenMethod = (method: string, rule: string, message: string): CelRule => ({
  rule: `self.method != '${method}' || (${rule})`,
  message,
});

const authRuleSpec = z
  .object({
    app: authNamePattern.optional().describe('app pattern (* and ? wildcards); unset: any app'),
    key: authNamePattern.optional().describe('stream key pattern; unset: any key'),
    actions: z.array(z.enum(authActions)).min(1).optional().describe('publish, play or both; unset: both'),
    method: z.enum(['open', 'keys', 'signed', 'jwt', 'callback']).describe('how a client proves it may publish or play (README, Security)'),
    keysSecret: z
      .object({ name: secretName })
      .optional()
      .describe('keys: a Secret whose data keys are stream keys and whose values are their secrets, one per line'),
    secret: secretKeySelector('signed: the HMAC-SHA256 secret (several lines: several valid secrets)').optional(),
    jwksUrl: httpUrl.optional().describe('jwt: JWKS URL'),
    keySecret: secretKeySelector('jwt: a JWKS or JWK, a PEM public key or an HMAC secret').optional(),
    issuer: z.string().min(1).optional().describe('jwt: required iss claim'),
    audience: z.string().min(1).optional().describe('jwt: required aud claim'),
    url: httpUrl.optional().describe('callback: URL the decision is POSTed to'),
    urlSecret: secretKeySelector('callback: the URL, when it carries a credential').optional(),
    timeoutMs: z
      .int()
      .min(50)
      .max(10_000)
      .optional()
      .describe(`callback: how long to wait for an answer (default ${authCallbackTimeoutMs}); less than spec.rtmpd.idleTimeoutSeconds`),
    cacheSeconds: z.int().min(0).max(3600).optional().describe('callback: how long an answer is reused (default 10)'),
    failOpen: z.boolean().optional().describe('callback: allow when the service cannot be reached (default false: refuse)'),
  })
  .meta(
    cel(
      whenMethod('keys', 'has(self.keysSecret)', 'method keys needs keysSecret'),
      whenMethod('signed', 'has(self.secret)', 'method signed needs secret'),
      whenMethod('jwt', 'has(self.jwksUrl) != has(self.keySecret)', 'method jwt needs exactly one of jwksUrl and keySecret'),
      whenMethod('callback', 'has(self.url) != has(self.urlSecret)', 'method callback needs exactly one of url and urlSecret'),
    ),
  );

const authSchema = z
  .object({
    rules: z
      .array(authRuleSpec)
      .max(256)
      .optional()
      .describe('who may publish and play what, first match wins; unset or empty: everyone may (rtmpd logs that it is open)'),
    apiTokenSecret: secretKeySelector(
      'bearer tokens for the HTTP API, one per line; unset: kick, revoke and recording delete are refused',
    ).optional(),
    apiReadAccess: rtmpdAccess('apiReadAccess'),
    metricsAccess: rtmpdAccess('metricsAccess'),
  })
  .prefault({})
  .meta(
    cel({
      // Also run against the default {}: every field read is guarded with has().
      rule: "has(self.apiTokenSecret) || ((!has(self.apiReadAccess) || self.apiReadAccess == 'open') && (!has(self.metricsAccess) || self.metricsAccess == 'open'))",
      message: "apiReadAccess or metricsAccess 'token' needs apiTokenSecret",
    }),
  )
  .describe(
    'authorization: rules referencing Secrets, which the operator mounts into the pods (never copied into the ConfigMap, args or status); rtmpd re-reads them when they change',
  );

export type AuthRuleSpec = z.infer<typeof authRuleSpec>;

const webhooksSchema = z
  .object({
    secret: secretKeySelector(
      'the key webhook events are signed with (Standard Webhooks: whsec_<base64>; several lines: several keys, for a rotation); unset: events go unsigned',
    ).optional(),
  })
  .prefault({})
  .describe(
    'webhook events (README, Webhooks): the URLs and limits are rtmpd options in spec.rtmpd (webhookUrls, webhookEvents, ...); the signing key is a Secret the operator mounts, which rtmpd re-reads when it changes',
  );

const forwardRuleSpec = z.object({
  app: authNamePattern.optional().describe('app pattern (* and ? wildcards); unset: any app'),
  key: authNamePattern.optional().describe('stream key pattern; unset: any key'),
  urls: z
    .array(
      z
        .string()
        .max(2048)
        .regex(/^rtmps?:\/\/[^/\s]+\/\S+\/\S+$/),
    )
    .max(16)
    .optional()
    .describe(
      "destinations, rtmp[s]://host[:port]/app/key, where {app} and {key} stand for the stream's: a second origin; a URL whose key is a secret belongs in urlSecrets, since anyone who reads the resource reads these",
    ),
  urlSecrets: z
    .array(secretKeySelector('a key of a Secret holding destination URLs, one a line (e.g. rtmp://a.rtmp.youtube.com/live2/<stream key>)'))
    .max(16)
    .optional()
    .describe(
      'destinations kept in Secrets, which the operator mounts; rtmpd reads them at each publish, so a changed key applies from the next',
    ),
});

const forwardsSchema = z
  .object({
    rules: z
      .array(forwardRuleSpec)
      .max(256)
      .optional()
      .describe(
        'where published streams are forwarded (restreamed) to, the first rule matching a stream applies (README, Forwarding); each pod forwards the streams it owns',
      ),
    caSecret: secretKeySelector(
      "PEM certificates trusted for rtmps:// destinations besides the roots Node.js trusts by default (its bundled Mozilla roots and NODE_EXTRA_CA_CERTS's; a private origin's CA; the OS trust store is not read)",
    ).optional(),
  })
  .prefault({})
  .describe(
    'forwarding (restreaming) to other RTMP and RTMPS servers: YouTube, Twitch, another origin (README, Forwarding); the timeout and retry options are in spec.rtmpd',
  );

const transcodeSchema = z
  .object({
    rules: z
      .array(transcodeRule)
      .max(256)
      .default([])
      .describe(
        'adaptive bitrate: the renditions (<app>/<key>_<name>) one ffmpeg per stream makes of the streams a rule matches, listed in /<app>/<key>/master.m3u8; the first matching rule applies (README, Adaptive bitrate)',
      ),
    ffmpegPath: rtmpdOptionWithDefault('transcodeFfmpegPath'),
    maxProcesses: rtmpdOptionWithDefault('transcodeMaxProcesses'),
  })
  .prefault({})
  .describe(
    "transcoding into a ladder of renditions. With rules and no spec.image the pods run the operator's transcode image (--rtmpd-transcode-image, by default rtmpd:<version>-transcode, whose ffmpeg has libx264 and the AAC encoder; GPL-2.0-or-later), so the first rule or the removal of the last rolls the pods; the default image's ffmpeg is built for snapshots only. A pinned spec.image needs such an ffmpeg. Each transcode takes a good part of a core: size spec.resources for it",
  );

const tlsSchema = z
  .object({
    secretName: secretName.describe(
      'a kubernetes.io/tls Secret (tls.crt: the certificate and its chain; tls.key), such as the one a cert-manager Certificate writes; mounted whole, so a renewal reaches the pods and rtmpd takes it for new connections without a restart',
    ),
    rtmpsPort: port.default(443).describe('RTMPS port (container and Service), 443 as the big platforms use'),
    https: z
      .boolean()
      .default(false)
      .describe("also serve the HTTP port's content (API, HTTP-FLV, HLS, console, /metrics) over HTTPS on httpsPort"),
    httpsPort: port.default(8443).describe('HTTPS port (container and Service) when https is true'),
  })
  .meta(cel({ rule: 'self.rtmpsPort != self.httpsPort', message: 'tls.rtmpsPort and tls.httpsPort must differ' }))
  .describe(
    'RTMPS (and HTTPS) with the certificate in a kubernetes.io/tls Secret (README, RTMPS and HTTPS); the plain RTMP and HTTP ports stay',
  );

// ---- spec ---------------------------------------------------------------------

/**
 * A spec.rtmpd option as the pods get it: its value, or rtmpd's default (CEL).
 * The API server also runs the rules against spec's default, {}, without rtmpd.
 */
const rtmpdValue = (key: 'idleTimeoutSeconds' | 'fleetLeaseSeconds') =>
  `(has(self.rtmpd) && has(self.rtmpd.${key}) ? self.rtmpd.${key} : ${JSON.stringify(configDefault(key))})`;

// rtmpd refuses Low-Latency HLS in MPEG-TS (rtmpd/src/config.ts) in one place, spec.hls or one rule; one of them
// in spec.hls and the other in a rule is no contradiction (the rule's own setting wins). has(): the rules are
// also checked against spec's default, {}, where spec.hls's defaults are not filled in.
const notBoth = (o: string) => `!has(${o}.lowLatency) || !${o}.lowLatency || !has(${o}.variant) || ${o}.variant != 'mpegts'`;
const lowLatencyInFmp4: CelRule = {
  rule: `(${notBoth('self')}) && (!has(self.rules) || self.rules.all(r, ${notBoth('r')}))`,
  message: `lowLatency and variant mpegts cannot both be set, in hls or in one of hls.rules: ${lowLatencyNeedsFmp4}`,
};

/** rtmpd's contradictions (rtmpd/src/config.ts) that the spec can hold, refused when the resource is applied. */
const contradictions: CelRule[] = [
  {
    rule: `!has(self.auth) || !has(self.auth.rules) || self.auth.rules.all(r, r.method != 'callback' || (has(r.timeoutMs) ? r.timeoutMs : ${authCallbackTimeoutMs}) < ${rtmpdValue('idleTimeoutSeconds')} * 1000)`,
    message: `a callback rule's timeoutMs (default ${authCallbackTimeoutMs}) must be less than spec.rtmpd.idleTimeoutSeconds (default ${JSON.stringify(configDefault('idleTimeoutSeconds'))}) in ms: a connection whose admission takes that long is closed as idle before the callback's timeout can answer`,
    fieldPath: '.auth.rules',
  },
  {
    rule: `${rtmpdValue('fleetLeaseSeconds')} <= ${rtmpdValue('idleTimeoutSeconds')} - ${CLAIM_WAIT_MARGIN_SECONDS}`,
    message: `spec.rtmpd.fleetLeaseSeconds (default ${JSON.stringify(configDefault('fleetLeaseSeconds'))}) must be at most spec.rtmpd.idleTimeoutSeconds (default ${JSON.stringify(configDefault('idleTimeoutSeconds'))}) less ${CLAIM_WAIT_MARGIN_SECONDS}: a publish waits no longer for the stream claim of a pod that stopped, so an encoder whose pod was killed would be refused on the others`,
    fieldPath: '.rtmpd.fleetLeaseSeconds',
  },
];

/** Whether the pods go without spec.ports.health: the liveness probe asks it unless spec.probes.liveness.port is http. */
const livenessOnHttpPort = "(has(self.probes) && has(self.probes.liveness) && self.probes.liveness.port == 'http')";
const livenessRules: CelRule[] = [
  {
    // has(): the API server also checks the rules against spec's default, {}, where the defaults below it are not filled in.
    rule: `${livenessOnHttpPort} || !has(self.ports) || (self.ports.health != self.ports.rtmp && self.ports.health != self.ports.http)`,
    message: 'ports.health must differ from ports.rtmp and ports.http',
    fieldPath: '.ports.health',
  },
  {
    rule: `!${livenessOnHttpPort} || !has(self.rtmpd) || !has(self.rtmpd.healthMaxHeartbeatAgeSeconds)`,
    message:
      "spec.rtmpd.healthMaxHeartbeatAgeSeconds is the threshold of the health port's thread, which a liveness probe on the http port (spec.probes.liveness.port) does without: remove one of them",
    fieldPath: '.rtmpd.healthMaxHeartbeatAgeSeconds',
  },
];

/** What the operator gives the rtmpd container when spec.resources is unset: requested, so it is not BestEffort. */
export const defaultResources = { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '2Gi' } } as const;

const accessMode = z.enum(['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']);
// Rules on the parent object, so that setting or removing the field counts as a change too.
const immutable = (field: string): CelRule => ({
  rule: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
  message: `${field} is immutable: it cannot be set, changed or removed after creation`,
  fieldPath: `.${field}`,
});

const volumeSchema = (what: string, fallbackSize: string) =>
  z
    .object({
      size: size(fallbackSize, what),
      storageClassName: z.string().max(253).optional().describe('StorageClass of the claim; unset uses the cluster default; immutable'),
      accessModes: z
        .array(accessMode)
        .min(1)
        .max(4)
        .default(['ReadWriteOnce'])
        .meta(
          cel({
            rule: "!('ReadWriteOncePod' in self) || size(self) == 1",
            message: 'ReadWriteOncePod cannot be combined with other access modes',
          }),
        )
        .describe(
          'access modes of the claims: with ReadWriteMany one claim is shared by every pod, otherwise each pod gets a claim of its own; immutable',
        ),
      existingClaim: objectName(
        'use this PersistentVolumeClaim, shared by every pod, instead of creating claims (size, storageClassName and accessModes are then ignored; with more than one replica it must be ReadWriteMany); it cannot be set or removed after creation',
      ).optional(),
    })
    .prefault({})
    .meta(
      cel(immutable('storageClassName'), immutable('accessModes'), {
        rule: 'has(self.existingClaim) == has(oldSelf.existingClaim)',
        message: 'existingClaim cannot be set or removed after creation: it decides whether the pods share one claim or have their own',
        fieldPath: '.existingClaim',
      }),
    )
    .describe(`the ${what} volume`);

const autoscalingSchema = z
  .object({
    minReplicas: z.int().min(1).max(1000).default(1).describe('fewest pods the autoscaler keeps'),
    maxReplicas: z.int().min(1).max(1000).describe('most pods the autoscaler makes; at least minReplicas'),
    targetPublishersPerPod: z
      .int()
      .min(1)
      .max(100_000)
      .describe('live publishers per pod the autoscaler aims at: replicas become ceil(live publishers of all pods / this)'),
    scaleDownStabilizationSeconds: z
      .int()
      .min(0)
      .max(3600)
      .default(300)
      .describe(
        'how long the autoscaler waits before scaling down after publishers leave (the highest recommendation of that window wins), so a publisher that reconnects does not cost a pod its streams',
      ),
  })
  .meta(
    cel({
      rule: '!has(self.minReplicas) || self.minReplicas <= self.maxReplicas',
      message: 'autoscaling.minReplicas must not exceed autoscaling.maxReplicas',
    }),
  )
  .describe(
    "scale on live publishers: the operator keeps an autoscaling/v2 HorizontalPodAutoscaler on this RtmpServer's scale subresource with the per-pod metric rtmpd_publishers, which a custom metrics API must serve (prometheus-adapter with the chart's rule); the autoscaler then writes spec.replicas and the operator follows it. Removing this field deletes the autoscaler and leaves spec.replicas where it was",
  );

export const specSchema = z
  .object({
    image: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .describe(
        "rtmpd container image; unset: the operator's default (rtmpd of the operator's own version), so an operator upgrade also upgrades this server; set it to pin a version",
      ),
    imagePullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'])
      .default('IfNotPresent')
      .describe('image pull policy of the rtmpd container'),
    replicas: z
      .int()
      .min(0)
      .max(1000)
      .default(1)
      .describe(
        'number of rtmpd pods (also set by the scale subresource, e.g. kubectl scale rtmpserver); with spec.autoscaling the HorizontalPodAutoscaler owns it: leave it out of the manifests you apply, or each apply undoes what the autoscaler chose',
      ),
    ports: z
      .object({
        rtmp: port.default(1935).describe('RTMP port (container and Service)'),
        http: port.default(8082).describe('HTTP port for the API, HTTP-FLV playback and /metrics (container and Service)'),
        // controller-runtime's health probe port, and the operator's own.
        health: port
          .default(8081)
          .describe(
            "liveness port: the kubelet's probe of GET /health, answered off rtmpd's main event loop (rtmpd's --health-bind; container only, no Service); unused, and not opened, when spec.probes.liveness.port is http",
          ),
      })
      .prefault({})
      .meta(cel({ rule: '!has(self.rtmp) || !has(self.http) || self.rtmp != self.http', message: 'ports.rtmp and ports.http must differ' }))
      .describe('ports rtmpd listens on'),
    service: z
      .object({
        type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP').describe('Service type'),
        annotations: annotations('annotations of the Service (e.g. for a cloud load balancer)').optional(),
        nodePorts: z
          .object({
            rtmp: z.int().min(30000).max(32767).optional().describe('node port for RTMP'),
            http: z.int().min(30000).max(32767).optional().describe('node port for HTTP'),
          })
          .meta(
            cel({
              rule: '!has(self.rtmp) || !has(self.http) || self.rtmp != self.http',
              message: 'service.nodePorts.rtmp and service.nodePorts.http must differ',
            }),
          )
          .optional()
          .describe('fixed node ports (type NodePort or LoadBalancer only)'),
        loadBalancerSourceRanges: z
          .array(
            z
              .string()
              .max(64)
              .meta(cel({ rule: 'isCIDR(self)', message: 'loadBalancerSourceRanges entries must be CIDRs such as 203.0.113.0/24' }))
              .describe('a client CIDR, e.g. 203.0.113.0/24'),
          )
          .max(64)
          .optional()
          .describe('client CIDRs allowed through the load balancer (type LoadBalancer only)'),
        proxyProtocol: z
          .object({
            from: z
              .array(
                z
                  .string()
                  .max(64)
                  .meta(cel({ rule: 'isCIDR(self)', message: 'proxyProtocol.from entries must be CIDRs such as 10.0.0.0/8' }))
                  .describe("a balancer's CIDR, e.g. 10.0.0.0/8"),
              )
              .min(1)
              .max(64)
              .describe(
                "the sources believed: the load balancer's addresses as rtmpd sees them (with externalTrafficPolicy Cluster, the nodes'); never the kubelet's, Prometheus' or the pods' own addresses when listeners include http",
              ),
            listeners: z
              .array(z.enum(['rtmp', 'rtmps', 'http', 'https']))
              .min(1)
              .max(4)
              .default(['rtmp', 'rtmps'])
              .describe(
                "the listeners the balancer sends headers to; http and https only when every connection from `from` to the HTTP port comes through the balancer (the kubelet's probes, Prometheus and a fleet's pods connect straight, without one)",
              ),
          })
          .optional()
          .describe(
            'the load balancer in front of the Service sends the PROXY protocol (v1 or v2; on AWS the Service annotation service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"), so rtmpd sees each client\'s address: rtmpd\'s --proxy-protocol and --proxy-protocol-from',
          ),
        externalTrafficPolicy: z
          .enum(['Cluster', 'Local'])
          .optional()
          .describe(
            "Local keeps the client's address (rtmpd's per-address limits, ip-bound URLs and logs see the encoder, not a node) and sends traffic only to nodes running a pod; Kubernetes' default, Cluster, rewrites it (type NodePort or LoadBalancer only)",
          ),
      })
      .prefault({})
      .meta(
        cel(
          {
            rule: "!has(self.nodePorts) || self.type != 'ClusterIP'",
            message: 'service.nodePorts needs service.type NodePort or LoadBalancer',
            fieldPath: '.nodePorts',
          },
          {
            rule: "!has(self.externalTrafficPolicy) || self.type != 'ClusterIP'",
            message: 'service.externalTrafficPolicy needs service.type NodePort or LoadBalancer',
            fieldPath: '.externalTrafficPolicy',
          },
          {
            rule: "!has(self.loadBalancerSourceRanges) || self.type == 'LoadBalancer'",
            message: 'service.loadBalancerSourceRanges needs service.type LoadBalancer',
            fieldPath: '.loadBalancerSourceRanges',
          },
        ),
      )
      .describe('the Service in front of the pods'),
    storage: z
      .object({
        recordings: volumeSchema('recordings', '10Gi'),
        keyframes: volumeSchema('keyframes (latest keyframe and JPEG snapshots)', '1Gi'),
        reclaimPolicy: z
          .enum(['Retain', 'Delete'])
          .default('Retain')
          .describe('Delete: the claims the operator created are removed with the RtmpServer; Retain: they are kept'),
      })
      .prefault({})
      .describe('persistent volumes for recordings and keyframes'),
    snapshot: z
      .object({
        enabled: rtmpdOptionWithDefault('snapshotEnabled'),
        intervalSeconds: rtmpdOptionWithDefault('snapshotIntervalSeconds'),
        width: rtmpdOptionWithDefault('snapshotWidth'),
        quality: rtmpdOptionWithDefault('snapshotQuality'),
        keep: rtmpdOptionWithDefault('snapshotKeep'),
      })
      .prefault({})
      .describe('JPEG snapshot policy'),
    recording: z
      .object({
        enabled: rtmpdOptionWithDefault('recordingEnabled'),
        format: rtmpdOptionWithDefault('recordingFormat'),
        segmentSeconds: rtmpdOptionWithDefault('recordingSegmentSeconds'),
        maxAgeHours: rtmpdOptionWithDefault('recordingMaxAgeHours'),
        maxBytes: rtmpdOptionWithDefault('recordingMaxBytes'),
        rules: z
          .array(recordingRule)
          .max(256)
          .default([])
          .describe('recording settings per app and key pattern; the first matching rule applies'),
      })
      .prefault({})
      .describe('recording of published streams on the recordings volume: segmented files named by start time, retention by age and size'),
    hls: z
      .object({
        enabled: rtmpdOptionWithDefault('hlsEnabled'),
        lowLatency: rtmpdOptionWithDefault('hlsLowLatency'),
        variant: rtmpdOptionWithDefault('hlsVariant'),
        segmentSeconds: rtmpdOptionWithDefault('hlsSegmentSeconds'),
        partSeconds: rtmpdOptionWithDefault('hlsPartSeconds'),
        windowSegments: rtmpdOptionWithDefault('hlsWindowSegments'),
        rules: z
          .array(hlsRule)
          .max(256)
          .default([])
          .describe('HLS settings per app and key pattern (e.g. Low-Latency HLS for one app); the first matching rule applies'),
      })
      .prefault({})
      .meta(cel(lowLatencyInFmp4))
      .describe('HLS and Low-Latency HLS playback at http://<host>:<http port>/<app>/<key>/index.m3u8'),
    resources: resources
      .optional()
      .describe(
        `compute resources of the rtmpd container; unset: requests of cpu ${defaultResources.requests.cpu} and memory ${defaultResources.requests.memory}, a memory limit of ${defaultResources.limits.memory}`,
      ),
    nodeSelector: labels('node labels the pods must match').optional(),
    tolerations: z.array(toleration).max(64).optional().describe('pod tolerations (core/v1 Toleration)'),
    affinity: affinity.optional(),
    topologySpreadConstraints: z
      .array(topologySpreadConstraint)
      .max(16)
      .optional()
      .describe('how the pods spread over nodes and zones; unset: at most one more pod on any node than on another, as a preference'),
    podAnnotations: annotations('extra annotations on the pods').optional(),
    podSecurityContext: podSecurityContext.optional(),
    securityContext: securityContext.optional(),
    probes: probes.optional(),
    podDisruptionBudget: z
      .object({
        enabled: z.boolean().default(true).describe('keep a PodDisruptionBudget'),
        maxUnavailable: intOrPercent
          .default(1)
          .describe('pods a voluntary disruption (node drain) may take down at once: a number or a percentage such as 25%'),
      })
      .prefault({})
      .describe(
        'the PodDisruptionBudget that limits node drains and other voluntary disruptions; it holds at any replica count, so scaling (also by the autoscaler) leaves it as it is',
      ),
    autoscaling: autoscalingSchema.optional(),
    logLevel: rtmpdOptionWithDefault('logLevel'),
    otel: z
      .object({
        endpoint: httpUrl.optional().describe('OTLP endpoint for traces (OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://otel-collector:4318'),
        serviceName: z.string().min(1).max(253).default('rtmpd').describe('OTEL_SERVICE_NAME of the pods'),
      })
      .prefault({})
      .describe('OpenTelemetry export'),
    metrics: z
      .object({
        serviceMonitor: z
          .object({
            enabled: z
              .boolean()
              .default(false)
              .describe('create a monitoring.coreos.com/v1 ServiceMonitor (needs the Prometheus Operator CRDs)'),
            interval: z
              .string()
              .max(32)
              .regex(/^([0-9]+(ms|s|m|h))+$/, 'expected a duration such as 30s')
              .default('30s')
              .describe('scrape interval, e.g. 30s'),
            labels: labels('extra labels on the ServiceMonitor (e.g. to match a Prometheus selector)').optional(),
          })
          .prefault({})
          .describe('a ServiceMonitor for the Prometheus Operator'),
      })
      .prefault({})
      .describe('Prometheus scraping: pods always carry prometheus.io/* annotations; a ServiceMonitor is optional'),
    auth: authSchema,
    webhooks: webhooksSchema,
    forwards: forwardsSchema,
    transcode: transcodeSchema,
    tls: tlsSchema.optional(),
    rtmpd: passthroughSchema.prefault({}).describe(passthroughDescription),
  })
  .meta(
    cel(
      {
        // ports and tls.*Port carry defaults, so the API server has them all by the time this runs.
        rule: `!has(self.tls) || ([self.ports.rtmp, self.ports.http] + (${livenessOnHttpPort} ? [] : [self.ports.health])).all(p, p != self.tls.rtmpsPort && (!self.tls.https || p != self.tls.httpsPort))`,
        message:
          'tls.rtmpsPort and tls.httpsPort must differ from ports.rtmp, ports.http and ports.health (when the liveness probe uses it)',
        fieldPath: '.tls',
      },
      ...livenessRules,
      ...contradictions,
    ),
  )
  .describe('desired state of the rtmpd fleet');

// ---- status -------------------------------------------------------------------

/** The standard Kubernetes condition (metav1.Condition), with its formats and limits. */
const conditionSchema = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe('the aspect the condition describes, in CamelCase'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown'),
    observedGeneration: z.int().min(0).optional().describe('the metadata.generation the condition was computed from'),
    lastTransitionTime: z.iso.datetime().describe('when status last changed (RFC 3339)'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('why, in one CamelCase word, for programs'),
    message: z.string().max(32768).describe('why, for people'),
  })
  .describe('a condition (metav1.Condition)');

export const statusSchema = z
  .object({
    observedGeneration: z.int().min(0).optional().describe('the generation the status describes'),
    replicas: z.int().optional().describe('pods of the StatefulSet'),
    readyReplicas: z.int().optional().describe('ready pods'),
    selector: z.string().optional().describe('label selector of the pods (for the scale subresource / HPA)'),
    image: z.string().optional().describe('the rtmpd image the pods run, once a rollout of it has completed'),
    conditions: z
      .array(conditionSchema)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe(
        'Ready, Reconciling and Stalled (kstatus: Reconciling while the children move towards the spec, Stalled when they cannot without a change), and ServiceMonitorReady when a ServiceMonitor is asked for',
      ),
    streams: z.int().min(0).optional().describe('live streams: the stream claims held by the running pods'),
    publishers: z.int().min(0).optional().describe('live publishers on all pods'),
    players: z
      .int()
      .min(0)
      .optional()
      .describe(
        'RTMP, HTTP-FLV and HLS players on all pods (HLS: clients that polled a playlist in the last 10 s; the relays between pods not counted)',
      ),
    pods: z
      .array(
        z.object({
          name: z.string().max(253).describe('the pod'),
          publishers: z.int().min(0).describe('live publishers on this pod'),
          players: z.int().min(0).describe('RTMP, HTTP-FLV and HLS players on this pod'),
          draining: z.boolean().optional().describe('true while the pod stops: it takes no new publisher'),
        }),
      )
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe(
        'per running pod, as it reports itself in its fleet Lease at each renewal (every third of spec.rtmpd.fleetLeaseSeconds); the operator writes the status at most every 10 s for a change of these counts',
      ),
    endpoints: z
      .object({
        rtmp: z.string().optional().describe('publish to and play from <rtmp>/<stream key>'),
        rtmps: z.string().optional().describe('the same over TLS, when spec.tls is set'),
        httpFlv: z.string().optional().describe('HTTP-FLV playback base URL: append /<stream key>.flv'),
        api: z.string().optional().describe('rtmpd HTTP API base URL (live streams at <api>/rtmp/streams)'),
      })
      .optional()
      .describe('in-cluster URLs to push to and play from'),
  })
  .describe('observed state, written by the operator');

export type RtmpServerSpec = z.infer<typeof specSchema>;
export type RtmpServerSpecInput = z.input<typeof specSchema>;
export type RtmpServerStatus = z.infer<typeof statusSchema>;
export type Condition = z.infer<typeof conditionSchema>;

interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RtmpServer {
  apiVersion: typeof apiVersion;
  kind: typeof kind;
  metadata: ObjectMeta;
  spec: RtmpServerSpec;
  status?: RtmpServerStatus;
}

/** The spec with every default filled in, as the API server stores it. */
export const parseSpec = (spec: unknown): RtmpServerSpec => specSchema.parse(spec ?? {});

/** Root-level CEL: the name becomes a Service name (DNS-1035) and prefixes the PVC names. */
export const rootRules: CelRule[] = [
  {
    rule: "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 50",
    message:
      'metadata.name must be a DNS-1035 label of at most 50 characters (lower case letters, digits, -; starting with a letter): it names the Service and the volume claims',
  },
];

/** The RTMP application name the status endpoints point at. */
export const rtmpApp = 'live';
