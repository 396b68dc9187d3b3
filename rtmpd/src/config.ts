// rtmpd's configuration: one zod schema, fed (in rising priority) by defaults,
// an optional YAML/JSON config file, RTMPD_* environment variables and flags
// (the loader is options.ts, shared with the operator). The operator imports
// this module to render a pod's configuration, so every option a pod can run
// with is declared here and nowhere else.
import { z } from 'zod';
import { authRulesSchema, type AuthRule } from './auth/rules.ts';
import { proxyListenerList } from './connections/proxy-protocol.ts';
import { cidrList } from './connections/trusted.ts';
import { fillPlaceholders } from './forward/placeholders.ts';
import { ruleList, streamRule } from './hub/stream-rules.ts';
import { parseDestination, redactUrl } from './rtmp/client/destination.ts';
import { webhookEventList, webhookEventTypes, webhookUrls } from './webhooks/options.ts';
import { redactHttpUrl } from './telemetry/redact.ts';
import { bool, decimalNumber, flagName, loadOptions, optionDefault, optionsHelp, parseOptions, type OptionSet } from './options.ts';

export { ConfigError, flagName } from './options.ts';
// The operator builds its spec.auth from these, so patterns and methods are declared once.
export {
  ACTIONS as authActions,
  CALLBACK_TIMEOUT_MS as authCallbackTimeoutMs,
  namePattern as authNamePattern,
  type AuthRule,
} from './auth/rules.ts';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):(\d{1,5})$/, 'expected HOST:PORT, e.g. 0.0.0.0:1935')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

// Values from flags and env arrive as text: the loader reads decimal digits only (options.ts).
const int = (min: number, max: number) => decimalNumber(min, max, { whole: true });
const seconds = (min: number, max: number) => decimalNumber(min, max, { whole: false });
const MiB = 1024 * 1024;
/**
 * The largest picture any level of H.264 (6.2: 139,264 macroblocks), HEVC and AV1 (6.x: MaxLumaPs,
 * MaxPicSize) allows: 8192 × 4352. A decoder that takes the picture size a publisher declares may
 * otherwise be made to allocate ffmpeg's own limit, 16384 × 16384, hundreds of MB a frame.
 */
const MAX_LEVEL_PICTURE_PIXELS = 35_651_584;

export const recordingFormats = ['fmp4', 'flv'] as const;

/** Recording settings for the streams an app/key pattern matches (recordingRules). */
export const recordingRule = streamRule({
  enabled: z.boolean().optional().describe('record matching streams (default --recording-enabled)'),
  format: z.enum(recordingFormats).optional().describe('recording format (default --recording-format)'),
  maxAgeHours: z
    .number()
    .min(0)
    .optional()
    .describe('delete recordings of matching streams older than this (default --recording-max-age-hours)'),
  maxBytes: z
    .int()
    .min(0)
    .optional()
    .describe('total size of the recordings of the streams this rule matches, oldest deleted first; 0 or unset: no limit of its own'),
});
export type RecordingRule = z.infer<typeof recordingRule>;

export const hlsVariants = ['fmp4', 'mpegts'] as const;
export type HlsVariant = (typeof hlsVariants)[number];
/** Why Low-Latency HLS and --hls-variant mpegts contradict each other (also the operator's CEL rule's words). */
export const lowLatencyNeedsFmp4 = 'Low-Latency HLS has fMP4 parts only: players do not take MPEG-TS parts';

/** HLS settings for the streams an app/key pattern matches (hlsRules). */
export const hlsRule = streamRule({
  enabled: z.boolean().optional().describe('serve HLS for matching streams (default --hls-enabled)'),
  lowLatency: z
    .boolean()
    .optional()
    .describe('Low-Latency HLS for matching streams (default --hls-low-latency); a rule that sets it wins over --hls-variant mpegts'),
  variant: z
    .enum(hlsVariants)
    .optional()
    .describe('HLS segment format for matching streams (default --hls-variant); a rule that sets mpegts turns --hls-low-latency off'),
});

/** Destinations one stream is forwarded to, its rule's URLs and its files' lines together: more are logged and left out. */
export const MAX_FORWARDS_PER_STREAM = 32;

/** A destination URL as written in a rule: checked at load, with placeholders standing for a stream's app and key. */
const forwardUrl = z
  .string()
  .max(2048)
  .superRefine((url, ctx) => {
    try {
      parseDestination(fillPlaceholders(url, 'app', 'key'));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** Where the streams an app/key pattern matches are forwarded (forwardRules). */
const forwardRule = streamRule({
  urls: z
    .array(forwardUrl)
    .max(16)
    .default([])
    .describe("destinations, rtmp://host[:port]/app/key or rtmps://...; {app} and {key} stand for the stream's"),
  urlFiles: z
    .array(z.string().min(1).max(4096))
    .max(16)
    .default([])
    .describe(
      `files holding more destination URLs, one a line (a mounted Secret: the stream key stays out of the config), read at each publish; a stream is forwarded to at most ${MAX_FORWARDS_PER_STREAM} destinations`,
    ),
});
export type ForwardRule = z.infer<typeof forwardRule>;

/** Renditions one transcode rule makes of a stream: each costs an encoder in the one ffmpeg of the stream. */
const MAX_RENDITIONS = 8;

/** One rung of a transcoding ladder: published back as <app>/<key>_<name>. */
const rendition = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9_-]{1,32}$/, 'expected 1-32 characters of a-z 0-9 _ -')
      .describe('appended to the stream key: <key>_<name>, e.g. 480p'),
    height: z
      .int()
      .min(64)
      .max(4320)
      .refine((height) => height % 2 === 0, 'must be even (H.264 4:2:0)')
      .describe('output height in pixels; the width keeps the aspect ratio'),
    videoBitrate: z.int().min(64).max(100_000).describe('video bitrate in kbit/s (also the cap: -maxrate)'),
    audioBitrate: z.int().min(16).max(512).default(128).describe('AAC bitrate in kbit/s'),
    fps: z.number().min(1).max(120).optional().describe("frame rate; unset keeps the source's"),
    codec: z.literal('h264').default('h264').describe('video codec (libx264); the only one for now'),
  })
  .strict();

/** The ladder made of the streams an app/key pattern matches (transcodeRules). */
export const transcodeRule = streamRule({
  renditions: z
    .array(rendition)
    .min(1)
    .max(MAX_RENDITIONS)
    .refine((renditions) => new Set(renditions.map((r) => r.name)).size === renditions.length, 'rendition names must differ')
    .describe('the renditions, each published as <app>/<key>_<name>'),
});
export type Rendition = z.infer<typeof rendition>;

/**
 * How a running rtmpd takes a change of the option in its config file
 * (config-reload.ts): `live` applies it at once, `restart` needs a new
 * process (the operator rolls the pods for those only).
 */
export type Reload = 'live' | 'restart';
const live = { reload: 'live' } as const satisfies { reload: Reload };
const restart = { reload: 'restart' } as const satisfies { reload: Reload };

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/**
 * How much of the idle timeout a publish in a fleet leaves unspent waiting for
 * the stream claim of a pod that stopped renewing (fleet/claims.ts): the idle
 * timeout closes a connection whose admission takes longer (rtmp/server/session.ts).
 */
export const CLAIM_WAIT_MARGIN_SECONDS = 2;
export const claimWaitSeconds = (idleTimeoutSeconds: number): number => Math.max(0, idleTimeoutSeconds - CLAIM_WAIT_MARGIN_SECONDS);

/**
 * Options each valid alone of which one would silently defeat the other: a
 * message for each such pair, naming both options and their values. The
 * configuration is refused with them at start and on a reload; the operator's
 * CRD states the same rules in CEL (operator/src/api/rtmpserver.ts).
 */
function contradictions(
  config: Pick<
    Config,
    | 'idleTimeoutSeconds'
    | 'authRules'
    | 'fleetName'
    | 'fleetLeaseSeconds'
    | 'apiTokenFile'
    | 'apiReadAccess'
    | 'metricsAccess'
    | 'hlsLowLatency'
    | 'hlsVariant'
    | 'hlsRules'
  >,
): string[] {
  const idle = `--idle-timeout-seconds ${config.idleTimeoutSeconds}`;
  const found: string[] = [];
  config.authRules.forEach((rule, index) => {
    if (rule.method === 'callback' && rule.timeoutMs >= config.idleTimeoutSeconds * 1000)
      found.push(
        `--auth-rules [${index}] (callback) timeoutMs ${rule.timeoutMs} must be less than ${idle} (${config.idleTimeoutSeconds * 1000} ms): a connection whose admission takes that long is closed as idle before the callback's timeout can answer`,
      );
  });
  const wait = claimWaitSeconds(config.idleTimeoutSeconds);
  if (config.fleetName && config.fleetLeaseSeconds > wait)
    found.push(
      `--fleet-lease-seconds ${config.fleetLeaseSeconds} must be at most ${wait} with ${idle}: a publish waits at most the idle timeout less ${CLAIM_WAIT_MARGIN_SECONDS} s for the stream claim of a pod that stopped, and the claim outlives that pod by up to the lease, so an encoder whose pod was killed would be refused on the others`,
    );
  // Checked here, not where access starts, so that a config reload switching to token access is refused too.
  if (!config.apiTokenFile && (config.apiReadAccess === 'token' || config.metricsAccess === 'token'))
    found.push('--api-read-access token and --metrics-access token need --api-token-file');
  if (config.hlsLowLatency && config.hlsVariant === 'mpegts')
    found.push(`--hls-low-latency and --hls-variant mpegts: ${lowLatencyNeedsFmp4}`);
  config.hlsRules.forEach((rule, index) => {
    if (rule.lowLatency && rule.variant === 'mpegts')
      found.push(`--hls-rules [${index}] sets lowLatency and variant mpegts: ${lowLatencyNeedsFmp4}`);
  });
  return found;
}

/** Every option, each checked alone; configSchema adds the checks across them. */
const eachOption = z.object({
  rtmpBind: hostPort.default('0.0.0.0:1935').describe('RTMP listen address (HOST:PORT)').meta(restart),
  httpBind: hostPort.default('0.0.0.0:8082').describe('HTTP listen address for the API, HTTP-FLV and /metrics (HOST:PORT)').meta(restart),
  rtmpsBind: z
    .union([z.literal(''), hostPort])
    .default('')
    .describe(
      'RTMPS (RTMP over TLS) listen address (HOST:PORT), e.g. 0.0.0.0:443; needs --tls-cert-file and --tls-key-file; empty: no RTMPS',
    )
    .meta(restart),
  httpsBind: z
    .union([z.literal(''), hostPort])
    .default('')
    .describe(
      'HTTPS listen address (HOST:PORT) serving what the HTTP port serves (API, HTTP-FLV, HLS, console, /metrics); needs --tls-cert-file and --tls-key-file; empty: no HTTPS',
    )
    .meta(restart),
  healthBind: z
    .union([z.literal(''), hostPort])
    .default('')
    .describe(
      "liveness listen address (HOST:PORT), e.g. 0.0.0.0:8081: GET /health answered by a thread of its own from the main event loop's heartbeat, so a loop busy for seconds stays alive and a stuck one does not (the operator's pods use it); empty: only /health on the HTTP port, answered in the main loop",
    )
    .meta(restart),
  healthMaxHeartbeatAgeSeconds: int(1, 3600)
    .default(30)
    .describe(
      "--health-bind answers 503 once the main event loop's heartbeat (every 250 ms) is older than this: above the longest turn measured in a join storm of 2,000 players on a starved core (33 s), and with the operator's probe (every 10 s, 3 failures) a stuck loop is restarted within about a minute",
    )
    .meta(restart),
  tlsCertFile: z
    .string()
    .default('')
    .describe(
      'PEM certificate chain (the server certificate first) for RTMPS and HTTPS, e.g. tls.crt of a kubernetes.io/tls Secret; re-read while running, a changed pair serves new connections',
    )
    .meta(restart),
  tlsKeyFile: z.string().default('').describe('PEM private key of --tls-cert-file, e.g. tls.key; re-read with it').meta(restart),
  tlsMaxVersion: z
    .enum(['TLSv1.2', 'TLSv1.3'])
    .default('TLSv1.3')
    .describe(
      "newest TLS version offered (TLS 1.2 is the least): TLSv1.2 for clients built on librtmp with GnuTLS (rtmpdump 2.4), which hang up on TLS 1.3's session tickets",
    )
    .meta(restart),
  tlsHandshakeTimeoutSeconds: int(1, 3600)
    .default(10)
    .describe('a connection to the RTMPS or HTTPS port that has not finished its TLS handshake this many seconds after accept is closed')
    .meta(live),
  consoleEnabled: bool
    .default(true)
    .describe('serve the web console (live thumbnails, a player, stream health) at GET / on the HTTP port; false leaves only the API')
    .meta(restart),
  storageDir: z.string().min(1).default('./data/rtmp/storage').describe('directory for recordings').meta(restart),
  keyframeDir: z
    .string()
    .min(1)
    .default('./data/rtmp/keyframes')
    .describe('directory for the latest keyframe and JPEG snapshot of each live stream')
    .meta(restart),
  logLevel: z
    .enum(logLevels)
    .default('info')
    .describe(`log level: ${logLevels.join(', ')}`)
    .meta(live),
  logFormat: z
    .enum(['json', 'pretty'])
    .default('json')
    .describe('log format: json (one object per line) or pretty (for a terminal)')
    .meta(restart),
  chunkSize: int(128, 65536)
    .default(60000)
    .describe(
      'outbound RTMP chunk size in bytes; large chunks (SRS also sends 60000) let most media messages go out as one header plus the body, uncopied',
    )
    .meta(live),
  gopCacheMaxBytes: int(0, 256 * 1024 * 1024)
    .default(16 * 1024 * 1024)
    .describe('upper bound of the per-stream GOP cache that lets players start at the last keyframe; 0 disables the cache')
    .meta(restart),
  playWaitSeconds: int(0, 3600)
    .default(0)
    .describe(
      'how long a player of a stream that is not live waits for its publisher before NetStream.Play.StreamNotFound; 0 answers at once',
    )
    .meta(restart),
  playerMaxBufferBytes: int(64 * 1024, 256 * 1024 * 1024)
    .default(4 * 1024 * 1024)
    .describe('bytes queued for a slow player before it skips to the next keyframe')
    .meta(restart),
  playerMaxQueueSeconds: int(1, 3600)
    .default(10)
    .describe(
      "how far behind the stream's newest media a slow player's oldest queued media may be before it skips to the next keyframe, whichever of this and --player-max-buffer-bytes comes first (a joiner's burst of the cached GOP is not counted)",
    )
    .meta(restart),
  playerWriteIntervalMs: int(0, 1000)
    .default(40)
    .describe(
      "how long a player's media (RTMP or HTTP-FLV) may wait to leave in one write with what follows it: fewer, larger writes cost less CPU for up to this much more latency (a reply, a control message or 64 KiB of media leaves at once); 0 writes media as each publisher read brings it",
    )
    .meta(restart),
  playerWriteIntervalMinPlayers: int(1, 1_000_000)
    .default(10)
    .describe(
      'the fewest players, RTMP and HTTP-FLV counted together, a stream must have for --player-write-interval-ms to merge their media: what a merge saves grows with the players each message is sent to, the latency it adds does not; the players of a smaller stream are written as each publisher read brings their media',
    )
    .meta(restart),
  playerStallTimeoutSeconds: int(1, 3600)
    .default(30)
    .describe(
      'a player whose socket takes less than --player-min-bytes-per-second of its queue for this long is disconnected, as is an HTTP answer (a recording download, an HLS segment, an API answer) whose socket takes none of it for this long',
    )
    .meta(restart),
  playerMinBytesPerSecond: int(0, 1024 * 1024 * 1024)
    .default(4096)
    .describe(
      'the least a player with bytes queued must read, on average over --player-stall-timeout-seconds, to stay connected (a reader that takes a byte now and then holds its queue)',
    )
    .meta(restart),
  idleTimeoutSeconds: int(1, 3600)
    .default(30)
    .describe(
      'a player whose connection moves no byte either way, or a publisher that sends no complete audio, video or data message, for this long is closed; so is any connection with an RTMP message unfinished this long',
    )
    .meta(live),
  connectTimeoutSeconds: int(1, 3600)
    .default(10)
    .describe('an RTMP connection must finish the handshake and send connect within this many seconds of being accepted')
    .meta(live),
  startTimeoutSeconds: int(1, 3600)
    .default(10)
    .describe(
      'an RTMP connection must ask to publish or play within this many seconds of connect, or of ending its last publish or play (the time the server’s admission checks take does not count: they have --idle-timeout-seconds)',
    )
    .meta(live),
  maxPauseSeconds: int(1, 86_400).default(120).describe('an RTMP player paused for longer is closed').meta(live),
  maxConnections: int(1, 1_000_000).default(10_000).describe('connections accepted at once over RTMP; more are refused').meta(live),
  maxConnectionsPerAddress: int(0, 1_000_000)
    .default(1000)
    .describe(
      'RTMP connections accepted at once from one client address (IPv6: one /64), so one host cannot take every slot; 0 for no limit. The default leaves room for a site of cameras behind one NAT',
    )
    .meta(live),
  maxPublishesPerAddressPerMinute: int(0, 1_000_000)
    .default(60)
    .describe(
      'publish starts from one client address (IPv6: one /64) per minute, all of them at once or spread out; one more is refused with NetStream.Publish.Rejected and its connection closed, so a client looping publish and unpublish cannot flood the recordings and webhooks; 0 for no limit',
    )
    .meta(live),
  httpMaxConnections: int(1, 1_000_000)
    .default(10_000)
    .describe('connections accepted at once over HTTP (HTTP-FLV players included); more are dropped at accept')
    .meta(restart),
  httpMaxConnectionsPerAddress: int(0, 1_000_000)
    .default(0)
    .describe(
      "HTTP and HTTPS connections accepted at once from one client address (IPv6: one /64), so one host cannot take every --http-max-connections slot; more are answered 429 (HTTPS: closed before the TLS handshake). 0, the default, for no limit: behind an Ingress or a reverse proxy every connection comes from the proxy's few addresses",
    )
    .meta(live),
  proxyProtocol: proxyListenerList
    .default([])
    .describe(
      "listeners (rtmp, rtmps, http, https: a list, or one string separated by commas) behind a load balancer that sends the PROXY protocol (v1 or v2): a connection from --proxy-protocol-from must start with a header, and the client it names is the connection's address for limits, auth, logs and the API; other sources are never read for one. Empty: off",
    )
    .meta(restart),
  proxyProtocolFrom: cidrList
    .default([])
    .describe(
      'the load balancers trusted to send PROXY protocol headers: addresses or CIDR ranges (a list, or one string separated by commas), e.g. 10.0.0.0/8,fd00::/8; required when --proxy-protocol is set',
    )
    .meta(restart),
  proxyProtocolTimeoutSeconds: int(1, 60)
    .default(5)
    .describe('a connection from --proxy-protocol-from that has not sent its whole PROXY header this many seconds after accept is closed')
    .meta(restart),
  httpForwardedFrom: cidrList
    .default([])
    .describe(
      'HTTP reverse proxies (an Ingress controller, nginx) trusted to name the client in Forwarded or X-Forwarded-For: addresses or CIDR ranges (a list, or one string separated by commas); the client of a request from one is the right-most address in the header that is not itself trusted (auth, ip-bound signed URLs, HLS, traces). Empty: the headers are ignored',
    )
    .meta(restart),
  httpHeadersTimeoutSeconds: int(1, 3600)
    .default(10)
    .describe("an HTTP request's headers must arrive within this many seconds, or it is answered 408 and closed")
    .meta(restart),
  httpRequestTimeoutSeconds: int(1, 3600)
    .default(30)
    .describe('an HTTP request, body included, must arrive within this many seconds (a response, such as HTTP-FLV, may last longer)')
    .meta(restart),
  httpKeepAliveTimeoutSeconds: int(1, 3600)
    .default(5)
    .describe('an HTTP connection idle between requests is closed after this many seconds')
    .meta(restart),
  maxMessageBytes: int(64 * 1024, 0xffffff)
    .default(8 * 1024 * 1024)
    .describe('largest RTMP message a publisher may send (a keyframe); a larger one closes the connection')
    .meta(restart),
  maxMessageBytesBeforePublish: int(4096, 0xffffff)
    .default(64 * 1024)
    .describe(
      'largest RTMP message, and bytes of messages still arriving, a connection may send before it is admitted to publish (players never need more)',
    )
    .meta(restart),
  maxChunkStreams: int(2, 65_599)
    .default(64)
    .describe('distinct RTMP chunk stream ids a connection may use (encoders use a handful); one more closes the connection')
    .meta(restart),
  partialMessagesMaxBytes: int(1024 * 1024, 2 ** 40)
    .default(256 * 1024 * 1024)
    .describe(
      "bytes held for RTMP messages still arriving, over all connections: half of it for publishers, half for every other connection, so neither can take the other's room, and while --max-connections-per-address is on, the connections of one client address (IPv6: one /64) hold at most a quarter of either half (never less than --max-message-bytes plus 1 MiB, what one publisher may hold); a connection that would pass its part is closed",
    )
    .meta(restart),
  recordingEnabled: bool
    .default(true)
    .describe('record every published stream under --storage-dir/<app>/<key>/ (recordingRules may choose per app and key)')
    .meta(restart),
  recordingFormat: z
    .enum(recordingFormats)
    .default('fmp4')
    .describe('recording format: fmp4 (fragmented MP4, playable up to its last fragment after a crash) or flv')
    .meta(restart),
  recordingSegmentSeconds: int(1, 86_400)
    .default(600)
    .describe('a recording is split into files of about this length, each starting on a keyframe and named by its start time')
    .meta(restart),
  recordingFragmentSeconds: seconds(0.1, 10)
    .default(1)
    .describe('fMP4 recordings are written in fragments of about this length: what a crash or a full disk may cost')
    .meta(restart),
  recordingMaxAgeHours: seconds(0, 1_000_000)
    .default(0)
    .describe('recordings older than this are deleted, oldest first (never the file being written); 0 keeps them')
    .meta(live),
  recordingMaxBytes: int(0, Number.MAX_SAFE_INTEGER)
    .default(0)
    .describe('recordings under --storage-dir beyond this total size are deleted, oldest first (never a file being written); 0: no limit')
    .meta(live),
  recordingRules: ruleList(recordingRule)
    .default([])
    .describe(
      'recording settings per app and key pattern: a list (JSON from a flag or variable) whose first matching rule applies, e.g. [{"app":"live","maxBytes":10737418240},{"app":"scratch","enabled":false}]',
    )
    .meta(live),
  hlsEnabled: bool
    .default(true)
    .describe(
      'serve HLS (fMP4, or MPEG-TS: --hls-variant) at /<app>/<key>/index.m3u8; a stream is segmented from its first playlist request on',
    )
    .meta(restart),
  hlsLowLatency: bool
    .default(false)
    .describe('Low-Latency HLS: partial segments, preload hints and blocking playlist reload (hlsRules may choose per app)')
    .meta(restart),
  hlsVariant: z
    .enum(hlsVariants)
    .default('fmp4')
    .describe(
      'HLS segment format: fmp4, or mpegts (MPEG-TS) for older players, smart TVs and set-top boxes, and for MP3 in browsers; a stream whose codecs TS does not carry here (AV1, Opus, AAC that ADTS cannot describe) gets fMP4; not with --hls-low-latency',
    )
    .meta(restart),
  hlsSegmentSeconds: seconds(0.5, 30)
    .default(2)
    .describe('HLS segments are cut on the first keyframe after this many seconds')
    .meta(restart),
  hlsPartSeconds: seconds(0.05, 5)
    .default(0.2)
    .describe('Low-Latency HLS partial segment duration; at most half of --hls-segment-seconds (a longer one is cut to that)')
    .meta(restart),
  hlsWindowSegments: int(3, 100).default(6).describe('segments listed in a live HLS playlist').meta(restart),
  hlsIdleTimeoutSeconds: int(5, 3600)
    .default(60)
    .describe("a stream's HLS segmenter stops after this long without a request, and its playlist goes this long after the stream ends")
    .meta(restart),
  hlsMaxStreamBytes: int(MiB, 1024 * MiB)
    .default(32 * MiB)
    .describe('HLS segments held in memory per stream; past it the oldest segments leave the playlist early')
    .meta(restart),
  hlsMaxTotalBytes: int(MiB, 64 * 1024 * MiB)
    .default(256 * MiB)
    .describe(
      'HLS segments held in memory for all streams; past it the largest stream drops its oldest segment and new HLS streams are refused (503)',
    )
    .meta(restart),
  hlsRules: ruleList(hlsRule)
    .default([])
    .describe(
      'HLS settings per app and key pattern: a list (JSON from a flag or variable) whose first matching rule applies, e.g. [{"app":"studio","lowLatency":true}]',
    )
    .meta(restart),
  forwardRules: ruleList(forwardRule)
    .default([])
    .describe(
      'forward (restream) published streams to other RTMP or RTMPS servers: a list (JSON from a flag or variable) whose first rule matching a stream applies, e.g. [{"app":"live","urls":["rtmp://backup.example.com/live/{key}"],"urlFiles":["/secrets/youtube/url"]}]; read at each publish (README, Forwarding). A stream relayed from another pod of a fleet is forwarded by its owner only',
    )
    .meta(live),
  forwardTimeoutSeconds: int(1, 300)
    .default(10)
    .describe("a forward's TCP or TLS connect, handshake and each command reply must come within this many seconds, or it is retried")
    .meta(live),
  forwardRetryMaxSeconds: int(1, 3600)
    .default(60)
    .describe(
      'a failed forward is retried after 1 s, doubling with each failure in a row up to this many seconds, while its stream is live',
    )
    .meta(live),
  forwardTlsCaFile: z
    .string()
    .default('')
    .describe(
      "PEM certificates trusted for rtmps:// destinations besides the roots Node.js trusts by default (its bundled Mozilla roots and NODE_EXTRA_CA_CERTS's; a private origin's CA; the OS trust store is not read); read at the first RTMPS forward",
    )
    .meta(restart),
  transcodeRules: ruleList(transcodeRule)
    .default([])
    .describe(
      'adaptive bitrate: each published stream the first matching rule names is transcoded by one ffmpeg into renditions published back as <app>/<key>_<name>, listed with the source in /<app>/<key>/master.m3u8; a list (JSON from a flag or variable), e.g. [{"app":"live","renditions":[{"name":"480p","height":480,"videoBitrate":1200},{"name":"360p","height":360,"videoBitrate":700}]}]; read at each publish (README, Adaptive bitrate)',
    )
    .meta(live),
  transcodeFfmpegPath: z
    .string()
    .min(1)
    .default('ffmpeg')
    .describe(
      "ffmpeg binary used for transcoding: needs the libx264 and aac encoders (the rtmpd image's ffmpeg has neither, its -transcode variant's has both)",
    )
    .meta(live),
  transcodeMaxProcesses: int(0, 256)
    .default(4)
    .describe(
      'transcodes (ffmpeg processes, a good part of a core each) that may run at once; a stream past it is not transcoded (logged and counted)',
    )
    .meta(live),
  snapshotEnabled: bool.default(true).describe('keep the last keyframe of each stream and serve JPEG snapshots').meta(restart),
  snapshotIntervalSeconds: int(0, 86_400)
    .default(0)
    .describe('also write a timestamped JPEG of every live stream this often; 0 writes snapshots only on request')
    .meta(restart),
  snapshotKeep: int(1, 100_000)
    .default(10)
    .describe('timestamped JPEGs kept per stream when --snapshot-interval-seconds is set')
    .meta(live),
  snapshotWidth: int(0, 7680)
    .default(0)
    .describe('snapshot width in pixels (height keeps the aspect ratio); 0 keeps the source width')
    .meta(live),
  snapshotQuality: int(1, 31).default(3).describe('JPEG quality for ffmpeg -q:v, 1 (best) to 31 (smallest)').meta(live),
  snapshotConcurrency: int(1, 64).default(2).describe('snapshot decodes that may run at once').meta(restart),
  snapshotTimeoutSeconds: int(1, 600)
    .default(10)
    .describe('seconds a snapshot decode may take before its requests are answered 503 (decode_failed); a slow or loaded node wants more')
    .meta(live),
  ffmpegPath: z.string().min(1).default('ffmpeg').describe('ffmpeg binary used for snapshots').meta(live),
  maxDecodePixels: int(64 * 64, 2 ** 31 - 1)
    .default(MAX_LEVEL_PICTURE_PIXELS)
    .describe(
      "the largest picture (width × height) a snapshot or a transcode decodes; a stream whose sequence header declares more gets no snapshot (422 picture_too_large) and no transcode (logged and counted), and ffmpeg's decoder gets it as -max_pixels (plus room for coding-block padding) against parameter sets sent in-band. The default, 8192 × 4352, is the largest picture the highest level of H.264, HEVC and AV1 allows (8K UHD and DCI 8K fit)",
    )
    .meta(live),
  metricsMaxStreams: int(0, 100_000)
    .default(200)
    .describe('streams that get their own per-stream metric series; the rest are summed under key="_overflow"')
    .meta(restart),
  shutdownGraceSeconds: int(0, 600)
    .default(10)
    .describe('on SIGTERM, how long in-flight responses may finish before rtmpd exits')
    .meta(live),
  authRules: authRulesSchema
    .default([])
    .describe(
      'who may publish and play what: a list of rules (JSON from a flag or variable), each an app and key pattern with a method: open, keys, signed, jwt or callback (README, Security); none: everyone may publish and play anything',
    )
    .meta(live),
  apiTokenFile: z
    .string()
    .default('')
    .describe(
      'file of bearer tokens for the HTTP API, one per line, re-read while running; none: kick, revoke and recording delete are refused',
    )
    .meta(restart),
  apiReadAccess: z
    .enum(['open', 'token'])
    .default('open')
    .describe("the API's reads (streams, snapshots, recordings): open, or token (a bearer token from --api-token-file)")
    .meta(live),
  metricsAccess: z
    .enum(['open', 'token'])
    .default('open')
    .describe('/metrics: open, or token (a bearer token from --api-token-file)')
    .meta(live),
  webhookUrls: webhookUrls
    .default([])
    .describe(
      'send stream.started, stream.ended and recording.completed events (README, Webhooks) to these http(s) URLs: a list, or one string of URLs separated by commas; each URL gets every event, in order, one request at a time',
    )
    .meta(live),
  webhookEvents: webhookEventList
    .default([...webhookEventTypes])
    .describe(`the events sent: a list, or one string separated by commas, of ${webhookEventTypes.join(', ')}`)
    .meta(live),
  webhookSecretFile: z
    .string()
    .default('')
    .describe(
      'file holding the key events are signed with (Standard Webhooks: whsec_<base64>, or any other text used as it is), re-read while running; none: events go unsigned',
    )
    .meta(restart),
  webhookTimeoutSeconds: seconds(0.1, 60)
    .default(5)
    .describe('a webhook request that has no answer within this many seconds is abandoned and retried')
    .meta(live),
  webhookMaxAttempts: int(1, 100)
    .default(8)
    .describe(
      'tries of one event at one URL: a network error, a timeout, 5xx or 429 is retried with exponential backoff (1 s doubling to 5 min, jittered); other answers are final',
    )
    .meta(live),
  webhookMaxAgeSeconds: int(1, 7 * 86_400)
    .default(3600)
    .describe('an event not delivered this long after it happened is given up (counted as failed)')
    .meta(live),
  webhookQueueMaxEvents: int(1, 1_000_000)
    .default(1000)
    .describe('events waiting per URL; one more drops the oldest (counted as dropped)')
    .meta(live),
  fleetName: z
    .string()
    .regex(/^([a-z]([-a-z0-9]*[a-z0-9])?)?$/, 'expected a DNS-1035 label, e.g. edge')
    .max(50)
    .default('')
    .describe(
      'run as one pod of a fleet (the RtmpServer of that name): streams are claimed in the Kubernetes API and played from any pod; needs --fleet-pod-name, --fleet-namespace, --fleet-pod-ip and --fleet-token-file; empty: a single server',
    )
    .meta(restart),
  fleetPodName: z.string().max(253).default('').describe("this pod's name (downward API metadata.name)").meta(restart),
  fleetPodUid: z
    .string()
    .regex(/^[0-9a-fA-F-]*$/, 'expected a UID, e.g. 4b3d5a7e-1f0c-4e8a-9d1b-6c2f0e9a7b31')
    .max(36)
    .default('')
    .describe(
      "this pod's UID (downward API metadata.uid): the pod's Lease and its stream claims name the Pod as their owner, so Kubernetes deletes them with the Pod; empty: no owner",
    )
    .meta(restart),
  fleetNamespace: z.string().max(63).default('').describe("this pod's namespace (downward API metadata.namespace)").meta(restart),
  fleetPodIp: z
    .string()
    .regex(/^([0-9.]+|[0-9a-fA-F:]+)?$/, 'expected an IP address')
    .max(45)
    .default('')
    .describe("this pod's IP, which the other pods relay from (downward API status.podIP)")
    .meta(restart),
  fleetTokenFile: z
    .string()
    .default('')
    .describe(
      'file holding the credential pods of the fleet present to each other (relays, the fleet-wide stream and recording lists, recordings served through another pod), the same on every pod; read at start',
    )
    .meta(restart),
  fleetLeaseSeconds: int(3, 300)
    .default(10)
    .describe(
      `how long a pod's stream claims outlive its last lease renewal: a killed pod's streams can be published on another pod after this long; the lease is renewed every third of it. At most --idle-timeout-seconds less ${CLAIM_WAIT_MARGIN_SECONDS}, the longest a publish waits for a claim`,
    )
    .meta(restart),
});

export const configSchema = eachOption.superRefine((config, ctx) => {
  for (const message of contradictions(config)) ctx.addIssue({ code: 'custom', message, path: [] });
});

export type Config = z.infer<typeof eachOption>;
export type ConfigKey = keyof Config;

/** `rtmpBind` → `RTMPD_RTMP_BIND`, the environment variable name. */
export const envName = (key: string): string => `RTMPD_${flagName(key).replace(/-/g, '_').toUpperCase()}`;

export const configKeys = Object.keys(configSchema.shape) as ConfigKey[];

/** Whether a running rtmpd applies a change of the option at once or needs a restart. */
export const reloadOf = (key: ConfigKey): Reload => (configSchema.shape[key].meta() as { reload: Reload }).reload;

/**
 * An option's value as a log may show it: forward destinations without their
 * stream keys, and webhook, callback and JWKS URLs without the credentials or
 * query a user may have put in them.
 */
export function loggableValue<K extends ConfigKey>(key: K, value: Config[K]): unknown {
  switch (key) {
    case 'forwardRules':
      return (value as ForwardRule[]).map((rule) => ({ ...rule, urls: rule.urls.map(redactUrl) }));
    case 'webhookUrls':
      return (value as string[]).map(redactHttpUrl);
    case 'authRules':
      return (value as AuthRule[]).map(loggableAuthRule);
    default:
      return value;
  }
}

function loggableAuthRule(rule: AuthRule): AuthRule {
  if (rule.method === 'callback' && rule.url !== undefined) return { ...rule, url: redactHttpUrl(rule.url) };
  if (rule.method === 'jwt' && rule.jwksUrl !== undefined) return { ...rule, jwksUrl: redactHttpUrl(rule.jwksUrl) };
  return rule;
}

export const rtmpdOptions: OptionSet<typeof configSchema> = {
  schema: configSchema,
  envName,
  // LOG_LEVEL is the variable the original product documented for verbose logs.
  fallbackEnv: { logLevel: 'LOG_LEVEL' },
  configFile: { flag: 'config', env: 'RTMPD_CONFIG' },
};

export interface LoadedArgs {
  config: Config;
  help: boolean;
  version: boolean;
  /** The config file read (--config or RTMPD_CONFIG), if any. */
  configFile?: string;
}

/** Reads flags, environment and the optional config file into a validated Config. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): LoadedArgs {
  const { options, help, version, file } = loadOptions(rtmpdOptions, argv, env);
  return { config: options, help, version, ...(file ? { configFile: file } : {}) };
}

/** Validates a raw object, naming the flag and variable of any bad option. */
export const parseConfig = (raw: Record<string, unknown>): Config => parseOptions(rtmpdOptions, raw);

/** rtmpd's own default for an option. */
export const configDefault = <K extends ConfigKey>(key: K): Config[K] => optionDefault(rtmpdOptions, key) as Config[K];

/** The --help text, generated from the schema so it can never drift from it. */
export const helpText = (): string =>
  optionsHelp(rtmpdOptions, [
    'Usage: rtmpd [options]',
    '       rtmpd sign --help       mint a signed URL for the "signed" auth method',
    '',
    'flux-rtmpd media server: RTMP ingest, RTMP and HTTP-FLV playback, recording, JPEG snapshots, HTTP API.',
    'Options come from flags, RTMPD_* environment variables and an optional YAML/JSON config file whose',
    'keys are the camelCase option names (rtmpBind: 0.0.0.0:1935); flags win over env, env over the file.',
    'A running rtmpd watches its config file and applies changes of the options marked "live" at once.',
  ]);

/** Splits HOST:PORT (IPv6 in brackets) for net.Server.listen. */
export function splitHostPort(bind: string): { host: string; port: number } {
  const at = bind.lastIndexOf(':');
  return { host: bind.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(bind.slice(at + 1)) };
}
