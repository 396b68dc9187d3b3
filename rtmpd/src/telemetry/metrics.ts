// Prometheus metrics. The hot path (rtmp → hub → writers) only bumps plain
// numbers; every series here is read from those numbers when /metrics is
// scraped, so a packet never touches prom-client and a scrape costs one walk
// over the live streams.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type * as PromClient from 'prom-client';
import type { Forwards } from '../forward/forwards.ts';
import type { Transcodes } from '../transcode/transcodes.ts';
import type { HlsServer } from '../hls/server.ts';
import type { StreamHub } from '../hub/hub.ts';
import { STREAM_SOURCES, zeroStreamStats, type Stream, type StreamSource, type StreamStats } from '../hub/stream.ts';
import { RTMP_PROTOCOLS, SUBSCRIBER_KINDS, type PublishProtocol, type RtmpProtocol, type SubscriberKind } from '../hub/subscriber.ts';
import type { Tls } from '../tls/tls.ts';
import { DELIVERY_OUTCOMES, type DeliveryCounts } from '../webhooks/delivery.ts';
import { webhookEventTypes } from '../webhooks/options.ts';

// prom-client's index loads its Pushgateway (https, zlib) and cluster
// aggregator too, which rtmpd never uses: the parts it does use are required
// on their own. So are its default metrics, but for process CPU, whose module
// loads @opentelemetry/api for exemplars rtmpd does not use (1 MiB of an idle
// rtmpd): rtmpd reads that one itself. Each is named in full so that the
// bundle can hold it (rtmpd/bundle.ts).
const require = createRequire(import.meta.url);
const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
type DefaultMetric = (registry: PromClient.Registry, config: { eventLoopMonitoringPrecision: number }) => void;
const DEFAULT_METRICS: DefaultMetric[] = [
  require('prom-client/lib/metrics/processStartTime'),
  require('prom-client/lib/metrics/osMemoryHeap'),
  require('prom-client/lib/metrics/processOpenFileDescriptors'),
  require('prom-client/lib/metrics/processMaxFileDescriptors'),
  require('prom-client/lib/metrics/eventLoopLag'),
  require('prom-client/lib/metrics/processResources'),
  require('prom-client/lib/metrics/processHandles'),
  require('prom-client/lib/metrics/processRequests'),
  require('prom-client/lib/metrics/heapSizeAndUsed'),
  require('prom-client/lib/metrics/heapSpacesSizeAndUsed'),
  require('prom-client/lib/metrics/version'),
  require('prom-client/lib/metrics/gc'),
];

/** Ingest-to-send delay: from 1 ms (a healthy relay) to 5 s (far past the 2 s target). */
export const RELAY_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];
/** A snapshot is one ffmpeg decode: tens of milliseconds to its timeout. */
const SNAPSHOT_DURATION_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** From an event to its delivery: tens of milliseconds when the receiver is up, minutes through retries. */
const WEBHOOK_DELIVERY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** The label value streams past `maxStreams` are summed under. */
const OVERFLOW = '_overflow';

type LabelValues = Record<string, string>;
interface Sample {
  value: number;
  labels?: LabelValues;
  metricName?: string;
}
type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose samples are computed by a function when scraped, and
 * written as Prometheus text here rather than by prom-client, whose
 * per-sample formatting made a scrape of 500 streams' series a 40 ms stall of
 * the event loop that relays their media.
 */
class PulledMetric {
  private readonly header: string;
  private readonly writeSamples: (out: ExpositionText) => void;

  constructor(name: string, help: string, type: MetricKind, writeSamples: (out: ExpositionText) => void) {
    this.header = `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}`;
    this.writeSamples = writeSamples;
  }

  writeTo(out: ExpositionText): void {
    out.write(this.header);
    this.writeSamples(out);
  }
}

/**
 * The text of a scrape, written into one buffer that is kept for the next
 * scrape, sample by sample with no string per line. A scrape of 500 streams
 * is some 200 KiB of text: built as strings it allocated 4 MiB, more than
 * two of V8's young generations (memory/node-flags.ts), so what was live at
 * each scavenge was promoted, and the text itself was flattened into the
 * large-object space; both wait for a full collection.
 */
class ExpositionText {
  private buffer = Buffer.allocUnsafeSlow(64 * 1024);
  private length = 0;

  /**
   * One native UTF-8 copy per string, and a sample line's two separators as
   * bytes: a loop per character made a scrape of 500 streams a third slower.
   */
  write(text: string): void {
    this.reserve(text.length * 3); // UTF-8 takes at most three bytes per UTF-16 code unit
    this.length += this.buffer.write(text, this.length);
  }

  /** One sample's line (after a line break): `name{labels} value`. */
  sample(name: string, labels: string, value: number): void {
    this.byte(0x0a); // \n
    this.write(name);
    if (labels.length > 0) this.write(labels);
    this.byte(0x20); // space
    if (Number.isSafeInteger(value) && value >= 0) this.writeDigits(value);
    else this.write(valueText(value));
  }

  /** What was written, copied (a response may still be sending it while the next scrape writes), and a fresh start. */
  take(): Buffer {
    const text = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    return text;
  }

  private byte(code: number): void {
    this.reserve(1);
    this.buffer[this.length++] = code;
  }

  /** A non-negative integer in decimal, as String() writes it, without making the string. */
  private writeDigits(value: number): void {
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    this.reserve(digits);
    for (let i = this.length + digits - 1, rest = value; i >= this.length; i--, rest = Math.floor(rest / 10)) {
      this.buffer[i] = 0x30 + (rest % 10);
    }
    this.length += digits;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.length + bytes, 2 * this.buffer.length));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }
}

function labelText(labels: LabelValues | undefined): string {
  if (labels === undefined) return '';
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${value.replace(/[\\"\n]/g, escapeLabelChar)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

/** The text of each stream's {app, key, source}, written once per stream rather than at every scrape. */
const labelTextOfStream = new WeakMap<Stream, string>();
function streamLabelText(stream: Stream): string {
  let text = labelTextOfStream.get(stream);
  if (text === undefined) {
    text = labelText({ app: stream.app, key: stream.key, source: stream.source });
    labelTextOfStream.set(stream, text);
  }
  return text;
}

/**
 * The `subscriber` values of rtmpd_stream_sent_bytes_total: the hub's
 * subscriber kinds, then `hls-player`, what HLS players downloaded, which
 * the `hls` segmenter (one subscriber for all of them) was handed once.
 */
const SENT_TO = [...SUBSCRIBER_KINDS, 'hls-player'] as const;
const HLS_PLAYER = SENT_TO.indexOf('hls-player');

/**
 * {app, key, source, subscriber} for each value of SENT_TO (by its index),
 * each written the first time it is needed: most streams send to one or two kinds.
 */
class SentLabelTexts {
  private readonly labels: LabelValues;
  private readonly texts: (string | undefined)[] = [];

  constructor(labels: LabelValues) {
    this.labels = labels;
  }

  of(kind: number): string {
    return (this.texts[kind] ??= labelText({ ...this.labels, subscriber: SENT_TO[kind]! }));
  }
}

/** A stream's rtmpd_stream_sent_bytes_total labels. */
const sentLabelTextsOfStream = new WeakMap<Stream, SentLabelTexts>();
function streamSentLabelTexts(stream: Stream): SentLabelTexts {
  let texts = sentLabelTextsOfStream.get(stream);
  if (texts === undefined) {
    texts = new SentLabelTexts({ app: stream.app, key: stream.key, source: stream.source });
    sentLabelTextsOfStream.set(stream, texts);
  }
  return texts;
}

/** A stream's rtmpd_stream_info labels, written again only when its codecs change. */
const infoOfStream = new WeakMap<Stream, { video: string; audio: string; text: string }>();
function streamInfoLabelText(stream: Stream): string {
  const video = stream.videoTrack?.codec ?? 'none';
  const audio = stream.audioTrack?.codec ?? 'none';
  let info = infoOfStream.get(stream);
  if (info?.video !== video || info.audio !== audio) {
    const labels = { app: stream.app, key: stream.key, source: stream.source, video_codec: video, audio_codec: audio };
    info = { video, audio, text: labelText(labels) };
    infoOfStream.set(stream, info);
  }
  return info.text;
}

const escapeLabelChar = (char: string): string => (char === '\n' ? '\\n' : `\\${char}`);

const overflowLabels = (source: StreamSource): LabelValues => ({ app: OVERFLOW, key: OVERFLOW, source });
const OVERFLOW_LABEL_TEXT = { publisher: labelText(overflowLabels('publisher')), relay: labelText(overflowLabels('relay')) };
const OVERFLOW_SENT_LABEL_TEXTS = {
  publisher: new SentLabelTexts(overflowLabels('publisher')),
  relay: new SentLabelTexts(overflowLabels('relay')),
};

const valueText = (value: number): string =>
  Number.isFinite(value) ? String(value) : Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf';

/**
 * A histogram kept as plain numbers: observe() is a short scan over the
 * bucket bounds and two additions, cheap enough to run for every packet.
 */
class PlainHistogram {
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  samples(name: string, labels: LabelValues = {}): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf';
      out.push({ metricName: `${name}_bucket`, labels: { le, ...labels }, value: cumulative });
    }
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
    return out;
  }
}

/** What the recorder counts (storage/recorder.ts RecorderStats). */
export interface RecordingCounters {
  filesOpened: number;
  bytesWritten: number;
  errors: number;
  diskFull: number;
  dropped: number;
}

/** What retention counts (storage/retention.ts RetentionStats). */
export interface RetentionCounters {
  deletedFiles: number;
  deletedBytes: number;
}

/** A stream's recording state, from the recorder. */
type RecordingStateOf = (stream: Stream) => 'recording' | 'disk_full' | 'failed' | 'unsupported_codec' | undefined;

/**
 * What an open connection is doing: the `state` label of rtmpd_connections
 * and the states of an RTMP session (rtmp/server/session.ts), one vocabulary.
 * `connecting`: handshake done, no connect command yet; `admitting`: a
 * publish or play is being checked; `waiting`: a player waits for its publisher.
 */
export const CONNECTION_STATES = ['handshake', 'connecting', 'connected', 'admitting', 'waiting', 'publishing', 'playing'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

/**
 * Why a listener refused a connection: the `reason` label of
 * rtmpd_connections_refused_total and rtmpd_http_connections_refused_total.
 * The proxy ones are a trusted balancer's connection with a bad PROXY header,
 * one begun and not finished in time, or one that sent nothing in time (a
 * health check that holds its connection: no sign of a misconfiguration,
 * which makes clients' bytes arrive unannounced) (connections/proxy-protocol.ts).
 */
const CONNECTION_REFUSALS = ['max_connections', 'per_address', 'bad_proxy_header', 'proxy_header_timeout', 'idle_no_header'] as const;
export type ConnectionRefusal = (typeof CONNECTION_REFUSALS)[number];

/** Each reason at 0: a listener's refusal counters before its first refusal. */
export const zeroConnectionRefusals = (): Record<ConnectionRefusal, number> =>
  Object.fromEntries(CONNECTION_REFUSALS.map((reason) => [reason, 0])) as Record<ConnectionRefusal, number>;

/** RTMP's reasons: those, and a publish over --max-publishes-per-address-per-minute (its connection is closed). */
export type RtmpConnectionRefusal = ConnectionRefusal | 'publish_rate';

/** What one RTMP listener's connections count (rtmp/server/stats.ts RtmpListenerStats). */
export interface RtmpListenerCounters {
  /** Open connections by state. */
  connections: Readonly<Record<ConnectionState, number>>;
  connectionsAccepted: number;
  connectionsRefused: Readonly<Record<RtmpConnectionRefusal, number>>;
  handshakeFailures: Readonly<Record<string, number>>;
  protocolErrors: Readonly<Record<string, number>>;
  /** By command name. */
  commandErrors: Readonly<Record<string, number>>;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

/** Counters the RTMP server keeps (rtmp/server/stats.ts RtmpStats); read only when scraped. */
export interface RtmpCounters {
  /** The listeners that listen: rtmps only with --rtmps-bind, so its series exist only then. */
  protocols: Readonly<Partial<Record<RtmpProtocol, RtmpListenerCounters>>>;
  inbound: { readonly held: number };
}

/** What the snapshot service counts (snapshot/service.ts SnapshotStats). */
export interface SnapshotCounters {
  cacheHits: number;
  busyRefusals: number;
  pictureRefusals: number;
  fileErrors: number;
}

/** What the HTTP listener counts (http/server.ts HttpStats). */
export interface HttpCounters {
  connectionsAccepted: number;
  connectionsRefused: Readonly<Record<ConnectionRefusal, number>>;
  clientErrors: Readonly<Record<string, number>>;
}

/** What the authorizer counts (auth/authorizer.ts AuthStats). */
export interface AuthCounters {
  /** By `${action} ${reason}`; action is publish, play or api. */
  refusals: Readonly<Record<string, number>>;
  ended: Readonly<{ kicked: number; revoked: number }>;
}

export interface MetricsOptions {
  /** Streams with their own `app`/`key` series; the rest are summed under `_overflow`. */
  maxStreams: number;
  /** Process and Node runtime metrics (CPU, memory, GC, event-loop lag); off in benchmarks. */
  runtime?: boolean;
}

type StreamCounter = keyof StreamStats;
const STREAM_COUNTERS: readonly StreamCounter[] = [
  'bytesIn',
  'videoFrames',
  'audioFrames',
  'keyframes',
  'framesDropped',
  'parseErrors',
  'gopOverflows',
  'hlsPlayerBytes',
];

/** Final counts of the overflow streams of one source that have ended. */
interface EndedCounts {
  stats: StreamStats;
  bytesOutByKind: Float64Array;
}
const noEndedCounts = (): EndedCounts => ({ stats: zeroStreamStats(), bytesOutByKind: new Float64Array(SUBSCRIBER_KINDS.length) });

/**
 * Decides which streams get their own series. A stream keeps its choice for
 * its whole life, and an overflow stream's counts are kept after it ends, so
 * the `_overflow` counters (one set per source) only ever grow, as counters must.
 */
class StreamSlots {
  readonly own = new Set<Stream>();
  readonly overflow: Record<StreamSource, Set<Stream>> = { publisher: new Set(), relay: new Set() };
  readonly overflowEnded: Record<StreamSource, EndedCounts> = { publisher: noEndedCounts(), relay: noEndedCounts() };
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get overflowSize(): number {
    return this.overflow.publisher.size + this.overflow.relay.size;
  }

  add(stream: Stream): void {
    const overflow = this.overflow[stream.source];
    if (this.own.has(stream) || overflow.has(stream)) return;
    if (this.own.size < this.max) this.own.add(stream);
    else overflow.add(stream);
  }

  remove(stream: Stream): void {
    this.own.delete(stream);
    const source = stream.source;
    if (!this.overflow[source].delete(stream)) return;
    const ended = this.overflowEnded[source];
    for (const counter of STREAM_COUNTERS) ended.stats[counter] += stream.stats[counter];
    for (let kind = 0; kind < SUBSCRIBER_KINDS.length; kind++) ended.bytesOutByKind[kind]! += stream.bytesOutByKind[kind]!;
  }
}

/** What webhook delivery counts (webhooks/delivery.ts WebhookDelivery). */
export interface WebhookCounters {
  readonly counts: DeliveryCounts;
  readonly queued: number;
}

/** What a pod of a fleet counts (fleet/fleet.ts). */
export interface FleetCounters {
  pods: number;
  claims: number;
  relays: number;
  relaysStarted: number;
  /** Relays ended by a failure, by reason (fleet/relays.ts RelayFailure). */
  relayFailures: Record<string, number>;
  leaseWrites: number;
  /** Leases of pods killed without the operator, deleted by this pod (fleet/abandoned.ts). */
  abandonedLeasesDeleted: { pod: number; claim: number };
}

/**
 * All of rtmpd's metrics in one registry. Wiring: create it, pass
 * `observeRelay` as the hub's `onRelayed` and `observeSnapshotDecode` as the
 * snapshot service's `onDecode`, then `watchHub`, `watchRtmp`, `watchHttp`,
 * `watchAuth`, `watchRecorder` and `watchSnapshots`; serve `scrape()` on /metrics.
 */
export class RtmpdMetrics {
  /** prom-client's Node.js runtime metrics. */
  private readonly registry = new Registry();
  /** rtmpd's own metrics, read when scraped. */
  private readonly pulled: PulledMetric[] = [];
  private readonly exposition = new ExpositionText();
  /** By the stream's source: a relayed stream's packets are a second hop, after their owner pod's. */
  readonly relayLatency: Record<StreamSource, PlainHistogram> = {
    publisher: new PlainHistogram(RELAY_LATENCY_BUCKETS),
    relay: new PlainHistogram(RELAY_LATENCY_BUCKETS),
  };
  readonly snapshotDuration = new PlainHistogram(SNAPSHOT_DURATION_BUCKETS);
  private readonly snapshotDecodes = { ok: 0, error: 0 };
  private snapshotStats: SnapshotCounters | undefined;
  private readonly slots: StreamSlots;
  private hub: StreamHub | undefined;
  private recording: RecordingCounters | undefined;
  private retention: RetentionCounters | undefined;
  private recordingState: RecordingStateOf = () => undefined;
  private rtmp: RtmpCounters | undefined;
  private auth: AuthCounters | undefined;
  private hls: Pick<HlsServer, 'stats' | 'muxerCount' | 'players'> | undefined;
  private http: HttpCounters | undefined;
  private webhooks: WebhookCounters | undefined;
  readonly webhookDelivery = new PlainHistogram(WEBHOOK_DELIVERY_BUCKETS);
  private readonly onPublish = (stream: Stream): void => this.slots.add(stream);
  private readonly onUnpublish = (stream: Stream): void => this.slots.remove(stream);

  constructor(options: MetricsOptions) {
    this.slots = new StreamSlots(options.maxStreams);
    if (options.runtime !== false) {
      for (const collect of DEFAULT_METRICS) collect(this.registry, { eventLoopMonitoringPrecision: 10 });
      this.defineProcessCpu();
      // Gauges named like counters fail `promtool check metrics`; the same
      // numbers stay available by type as nodejs_active_handles etc.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
        this.registry.removeSingleMetric(name);
      this.defineEventLoop();
    }
    this.defineStreams();
    this.defineRelay();
    this.defineSnapshots();
    this.defineRecording();
    this.defineHls();
    this.defineRtmp();
    this.defineAuth();
    this.defineHttp();
    this.defineWebhooks();
  }

  /** The hub's `onRelayed` hook: one histogram observation per relayed packet. */
  readonly observeRelay = (source: StreamSource, latencyMs: number): void => {
    this.relayLatency[source].observe(latencyMs / 1000);
  };

  /** The snapshot service's `onDecode` hook: one JPEG decode ended after `seconds`. */
  readonly observeSnapshotDecode = (seconds: number, ok: boolean): void => {
    this.snapshotDecodes[ok ? 'ok' : 'error']++;
    this.snapshotDuration.observe(seconds);
  };

  /** Webhook delivery's `onDelivered` hook: an event reached a URL `seconds` after it happened. */
  readonly observeWebhookDelivery = (seconds: number): void => {
    this.webhookDelivery.observe(seconds);
  };

  watchSnapshots(stats: SnapshotCounters): void {
    this.snapshotStats = stats;
  }

  watchHub(hub: StreamHub): void {
    this.hub = hub;
    for (const stream of hub.list()) this.slots.add(stream);
    hub.on('publish', this.onPublish);
    hub.on('unpublish', this.onUnpublish);
  }

  watchRecorder(stats: RecordingCounters, retention?: RetentionCounters, stateOf?: RecordingStateOf): void {
    this.recording = stats;
    this.retention = retention;
    if (stateOf) this.recordingState = stateOf;
  }

  watchHls(hls: Pick<HlsServer, 'stats' | 'muxerCount' | 'players'>): void {
    this.hls = hls;
  }

  watchRtmp(stats: RtmpCounters): void {
    this.rtmp = stats;
  }

  watchAuth(stats: AuthCounters): void {
    this.auth = stats;
  }

  watchHttp(stats: HttpCounters): void {
    this.http = stats;
  }

  watchWebhooks(stats: WebhookCounters): void {
    this.webhooks = stats;
  }

  /** RTMPS or HTTPS is on (tls/tls.ts): its series exist only then. */
  watchTls(tls: Pick<Tls, 'certificate' | 'handshakes' | 'listeners'>): void {
    const { handshakes, handshakeFailures } = tls.handshakes.stats;
    this.add('rtmpd_tls_handshakes_total', 'TLS handshakes completed, by listener (rtmps, https).', 'counter', () =>
      Object.entries(handshakes).map(([listener, value]) => ({ labels: { listener }, value })),
    );
    this.add(
      'rtmpd_tls_handshake_failures_total',
      'TLS connections closed before their handshake was done, by listener and reason: timeout, not_tls (plain RTMP, HTTP or noise), protocol_version, certificate_refused, aborted, other; those still running at shutdown are not counted.',
      'counter',
      () =>
        Object.entries(handshakeFailures).flatMap(([listener, reasons]) =>
          Object.entries(reasons).map(([reason, value]) => ({ labels: { listener, reason }, value })),
        ),
    );
    this.add(
      'rtmpd_tls_certificate_reloads_total',
      'Changed certificate files read while running, by result: ok (new connections get them), error (the last good pair stays).',
      'counter',
      () => Object.entries(tls.certificate.reloads).map(([result, value]) => ({ labels: { result }, value })),
    );
    // As cert-manager's certmanager_certificate_expiration_timestamp_seconds; rtmpd serves an expired one all the same.
    this.add(
      'rtmpd_tls_certificate_expiration_timestamp_seconds',
      'notAfter of the certificate each TLS listener (rtmps, https) serves now (Unix seconds).',
      'gauge',
      () => tls.listeners.map((listener) => ({ labels: { listener }, value: tls.certificate.value.notAfter })),
    );
  }

  /** Forwards to other RTMP servers (forward/forwards.ts): the stream's bytes are its sent-bytes series with subscriber="forward". */
  watchForwards(forwards: Pick<Forwards, 'stats' | 'countsByState'>): void {
    this.add(
      'rtmpd_forwards',
      'Forwards of live streams to other RTMP servers now, by state: connecting, handshaking, connect, createStream, publish (waiting for those replies), sending, backoff (waiting to retry).',
      'gauge',
      () =>
        Object.entries(forwards.countsByState())
          .filter(([state]) => state !== 'stopped')
          .map(([state, value]) => ({ labels: { state }, value })),
    );
    this.add('rtmpd_forward_attempts_total', 'Connections opened to forward destinations.', 'counter', () => [
      { value: forwards.stats.attempts },
    ]);
    this.add(
      'rtmpd_forward_failures_total',
      'Forward connections that failed and are retried with backoff, by reason: refused, timeout, closed (by the destination), stalled (read too slowly), certificate, connection, protocol.',
      'counter',
      () => Object.entries(forwards.stats.failures).map(([reason, value]) => ({ labels: { reason }, value })),
    );
  }

  /** Transcodes (transcode/transcodes.ts): their renditions are streams with series of their own. */
  watchTranscodes(transcodes: Pick<Transcodes, 'stats' | 'countsByState'>): void {
    this.add(
      'rtmpd_transcodes',
      'Transcodes (one ffmpeg per source stream) now, by state: starting (no rendition published yet), running, backoff (waiting to restart ffmpeg).',
      'gauge',
      () =>
        Object.entries(transcodes.countsByState())
          .filter(([state]) => state !== 'stopped')
          .map(([state, value]) => ({ labels: { state }, value })),
    );
    this.add('rtmpd_transcode_starts_total', 'ffmpeg processes started for transcodes, restarts included.', 'counter', () => [
      { value: transcodes.stats.starts },
    ]);
    this.add(
      'rtmpd_transcode_failures_total',
      'Transcode ffmpegs that ended while their source was live, by reason: spawn_failed (not runnable, e.g. a bad --transcode-ffmpeg-path), exited (its own exit), killed (by a signal); each is restarted with backoff.',
      'counter',
      () => Object.entries(transcodes.stats.failures).map(([reason, value]) => ({ labels: { reason }, value })),
    );
    this.add(
      'rtmpd_transcode_refused_total',
      'Streams a transcode rule matched that were not transcoded, by reason: max_processes (--transcode-max-processes were running), picture_too_large (the video sequence header declares a picture over --max-decode-pixels).',
      'counter',
      () => Object.entries(transcodes.stats.refused).map(([reason, value]) => ({ labels: { reason }, value })),
    );
  }

  /** A pod of a fleet: its series exist only then. */
  watchFleet(stats: () => FleetCounters): void {
    const read = (field: Exclude<keyof FleetCounters, 'abandonedLeasesDeleted' | 'relayFailures'>) => () => [{ value: stats()[field] }];
    this.add('rtmpd_fleet_pods', 'Pods of the fleet whose Lease this pod sees alive, itself included.', 'gauge', read('pods'));
    this.add('rtmpd_fleet_claims', 'Stream claims this pod holds (streams it owns).', 'gauge', read('claims'));
    this.add('rtmpd_fleet_relays', 'Streams relayed into this pod from their owners now.', 'gauge', read('relays'));
    this.add('rtmpd_fleet_relays_started_total', 'Relays started from another pod.', 'counter', read('relaysStarted'));
    this.add(
      'rtmpd_fleet_relay_failures_total',
      "Relays from another pod ended by a failure, by reason: tag_too_large (the owner sent an FLV tag over --max-message-bytes, refused from its header), bad_flv (other malformed FLV), media (the owner's media could not be relayed here).",
      'counter',
      () => Object.entries(stats().relayFailures).map(([reason, value]) => ({ labels: { reason }, value })),
    );
    this.add(
      'rtmpd_fleet_relay_dropped_frames_total',
      "Frames this pod did not send to other pods relaying its streams (a relay's queue passed --player-max-buffer-bytes or --player-max-queue-seconds): every player there missed them.",
      'counter',
      () => [{ value: this.hub?.relayFramesDropped ?? 0 }],
    );
    this.add(
      'rtmpd_fleet_relays_stalled_closed_total',
      'Relays to other pods closed because they took less than --player-min-bytes-per-second of their queue over --player-stall-timeout-seconds, as a stalled player is (not in rtmpd_players_stalled_closed_total).',
      'counter',
      () => [{ value: this.hub?.relaysStalledClosed ?? 0 }],
    );
    this.add(
      'rtmpd_fleet_lease_writes_total',
      'Writes to the Kubernetes API: pod Lease renewals, stream claims created, taken over and deleted, and abandoned Leases deleted.',
      'counter',
      read('leaseWrites'),
    );
    this.add(
      'rtmpd_fleet_abandoned_leases_deleted_total',
      'Leases without a Pod owner that this pod deleted as abandoned, by kind: pod (a pod Lease not seen renewed for 5 minutes or 10 Lease durations, the longer: rtmpd run without the operator and killed), claim (a stream claim whose holder has no pod Lease).',
      'counter',
      () => Object.entries(stats().abandonedLeasesDeleted).map(([kind, value]) => ({ labels: { kind }, value })),
    );
  }

  /** Prometheus text exposition of every metric. */
  async scrape(): Promise<Buffer> {
    const runtime = this.registry.getMetricsAsArray().length === 0 ? undefined : await this.registry.metrics();
    // From here on synchronous, so scrapes that overlap never share the buffer.
    const out = this.exposition;
    if (runtime !== undefined) out.write(`${runtime}\n`);
    for (const [i, metric] of this.pulled.entries()) {
      if (i > 0) out.write('\n\n');
      metric.writeTo(out);
    }
    out.write('\n');
    return out.take();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.hub?.off('publish', this.onPublish);
    this.hub?.off('unpublish', this.onUnpublish);
  }

  private add(name: string, help: string, type: MetricKind, read: () => Sample[]): void {
    this.pulled.push(
      new PulledMetric(name, help, type, (out) => {
        for (const { metricName = name, labels, value } of read()) out.sample(metricName, labelText(labels), value);
      }),
    );
  }

  private defineHls(): void {
    this.add('rtmpd_hls_streams', 'Streams being segmented for HLS now (from their first playlist request until idle).', 'gauge', () => [
      { value: this.hls?.muxerCount ?? 0 },
    ]);
    this.add('rtmpd_hls_memory_bytes', 'Bytes of HLS segments, parts and init sections held in memory.', 'gauge', () => [
      { value: this.hls?.stats.bytes ?? 0 },
    ]);
    this.add('rtmpd_hls_players', 'Estimated HLS players: distinct clients that polled a playlist in the last 10 s.', 'gauge', () => [
      { value: this.streams().reduce((sum, s) => sum + (this.hls?.players(s) ?? 0), 0) },
    ]);
    this.add('rtmpd_hls_requests_total', 'HLS requests answered, by what was asked for.', 'counter', () =>
      (['playlist', 'init', 'segment', 'part'] as const).map((type) => ({ labels: { type }, value: this.hls?.stats.requests[type] ?? 0 })),
    );
    this.add(
      'rtmpd_hls_refused_total',
      "HLS streams refused because all streams' HLS memory was at --hls-max-total-bytes.",
      'counter',
      () => [{ value: this.hls?.stats.refusedCapacity ?? 0 }],
    );
  }

  private defineWebhooks(): void {
    this.add(
      'rtmpd_webhook_deliveries_total',
      'Webhook events by type and what became of them at each URL: delivered, retried (one per retry), failed (given up), dropped (queue full).',
      'counter',
      () =>
        webhookEventTypes.flatMap((event) =>
          DELIVERY_OUTCOMES.map((outcome) => ({ labels: { event, outcome }, value: this.webhooks?.counts[event][outcome] ?? 0 })),
        ),
    );
    this.add('rtmpd_webhook_queue_events', 'Webhook events waiting or in flight, over all URLs.', 'gauge', () => [
      { value: this.webhooks?.queued ?? 0 },
    ]);
    this.add('rtmpd_webhook_delivery_seconds', 'From a webhook event to its delivery at a URL, retries included.', 'histogram', () =>
      this.webhookDelivery.samples('rtmpd_webhook_delivery_seconds'),
    );
  }

  /** prom-client's process CPU counters, by their names. */
  private defineProcessCpu(): void {
    const seconds = (read: (usage: NodeJS.CpuUsage) => number) => () => [{ value: read(process.cpuUsage()) / 1e6 }];
    this.add(
      'process_cpu_user_seconds_total',
      'Total user CPU time spent in seconds.',
      'counter',
      seconds((u) => u.user),
    );
    this.add(
      'process_cpu_system_seconds_total',
      'Total system CPU time spent in seconds.',
      'counter',
      seconds((u) => u.system),
    );
    this.add(
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      'counter',
      seconds((u) => u.user + u.system),
    );
  }

  private defineEventLoop(): void {
    const read = (field: 'active' | 'idle') => () => [{ value: performance.eventLoopUtilization()[field] / 1000 }];
    this.add(
      'rtmpd_event_loop_active_seconds_total',
      'Time the event loop spent running code; its rate is the event-loop utilization (0-1).',
      'counter',
      read('active'),
    );
    this.add('rtmpd_event_loop_idle_seconds_total', 'Time the event loop spent waiting for I/O.', 'counter', read('idle'));
  }

  /** Live streams, in slot order, with any stream the hub had before watchHub. */
  private streams(): Stream[] {
    if (!this.hub) return [];
    const live = this.hub.list();
    for (const stream of live) this.slots.add(stream);
    return live;
  }

  /** Subscribers of every live stream of one kind. */
  private subscribers(kind: SubscriberKind): number {
    let n = 0;
    for (const stream of this.streams()) n += stream.subscriberCounts()[kind];
    return n;
  }

  private defineStreams(): void {
    this.add(
      'rtmpd_publishers',
      'Publishers live now, i.e. live streams, by protocol (rtmp, rtmps; transcode, the renditions of transcodes, while there are any).',
      'gauge',
      () => {
        const live = this.streams();
        const count = (protocol: PublishProtocol) => live.filter((s) => s.publisher.protocol === protocol).length;
        const listeners = this.rtmpListeners().map(([protocol]) => ({ labels: { protocol }, value: count(protocol) }));
        // Only while there are any: a server without transcodes keeps one series per listener, as before renditions had their own.
        const renditions = count('transcode');
        return renditions > 0 ? [...listeners, { labels: { protocol: 'transcode' }, value: renditions }] : listeners;
      },
    );
    this.add('rtmpd_players', 'Players connected now, by protocol (rtmp, rtmps, http-flv).', 'gauge', () =>
      [...this.rtmpListeners().map(([protocol]) => protocol), 'http-flv' as const].map((protocol) => ({
        labels: { protocol },
        value: this.subscribers(protocol),
      })),
    );
    this.add(
      'rtmpd_recordings_active',
      'Streams being recorded now (writing files: not stopped, not of codecs the format leaves out).',
      'gauge',
      () => [
        {
          value: this.streams().filter(
            (s) =>
              s.subscriberCounts().recorder > 0 && !['disk_full', 'failed', 'unsupported_codec'].includes(this.recordingState(s) ?? ''),
          ).length,
        },
      ],
    );
    this.add(
      'rtmpd_recordings_stopped',
      'Streams whose recording is stopped by a disk error now (reason disk_full or failed); it retries every 5 s.',
      'gauge',
      () => {
        const states = this.streams().map((s) => this.recordingState(s));
        return (['disk_full', 'failed'] as const).map((reason) => ({
          labels: { reason },
          value: states.filter((s) => s === reason).length,
        }));
      },
    );
    this.add('rtmpd_gop_cache_bytes', "Bytes held in all streams' GOP caches (what a joining player is sent first).", 'gauge', () => [
      { value: this.streams().reduce((sum, s) => sum + s.gopCacheBytes, 0) },
    ]);
    this.add(
      'rtmpd_players_stalled_closed_total',
      'Players disconnected because their socket took less than --player-min-bytes-per-second of their queue over --player-stall-timeout-seconds (a forward that reads that slowly is rtmpd_forward_failures_total{reason="stalled"}, a relay to another pod rtmpd_fleet_relays_stalled_closed_total).',
      'counter',
      () => [{ value: this.hub?.stalledClosed ?? 0 }],
    );

    // Per-stream series: own slots by name, the rest summed under _overflow, per source.
    const perStream = (name: string, help: string, type: MetricKind, value: (s: Stream) => number, overflowEnded?: StreamCounter) => {
      const write = (out: ExpositionText): void => {
        this.streams();
        for (const stream of this.slots.own) out.sample(name, streamLabelText(stream), value(stream));
        for (const source of STREAM_SOURCES) {
          const overflow = this.slots.overflow[source];
          let sum = overflowEnded === undefined ? 0 : this.slots.overflowEnded[source].stats[overflowEnded];
          if (overflow.size === 0 && sum === 0) continue;
          for (const stream of overflow) sum += value(stream);
          out.sample(name, OVERFLOW_LABEL_TEXT[source], sum);
        }
      };
      this.pulled.push(new PulledMetric(name, help, type, write));
    };
    const counter = (name: string, help: string, field: StreamCounter) => perStream(name, help, 'counter', (s) => s.stats[field], field);
    counter(
      'rtmpd_stream_received_bytes_total',
      'Media bytes received (audio, video, metadata bodies) from the stream\'s publisher, or with source="relay" from its owner pod, which counted them already.',
      'bytesIn',
    );
    this.defineSentBytes();
    counter('rtmpd_stream_video_frames_total', 'Video frames received (sequence headers excluded).', 'videoFrames');
    counter('rtmpd_stream_audio_frames_total', 'Audio frames received (sequence headers excluded).', 'audioFrames');
    counter('rtmpd_stream_keyframes_total', 'Video keyframes received.', 'keyframes');
    counter(
      'rtmpd_stream_dropped_frames_total',
      'Frames not sent to slow players (their queue passed --player-max-buffer-bytes or --player-max-queue-seconds), summed over players; relays to other pods are rtmpd_fleet_relay_dropped_frames_total.',
      'framesDropped',
    );
    counter('rtmpd_stream_parse_errors_total', 'Audio/video messages whose codec data could not be read (relayed anyway).', 'parseErrors');
    counter(
      'rtmpd_stream_gop_cache_overflows_total',
      'GOPs not cached because they outgrew --gop-cache-max-bytes (players joining in them wait for the next keyframe).',
      'gopOverflows',
    );
    perStream('rtmpd_stream_players', 'Players of the stream now (recorder excluded).', 'gauge', (s) => s.playerCount);
    perStream('rtmpd_stream_gop_cache_bytes', "Bytes in the stream's GOP cache.", 'gauge', (s) => s.gopCacheBytes);
    perStream(
      'rtmpd_stream_uptime_seconds',
      'Seconds since the stream was published (summed for _overflow).',
      'gauge',
      (s) => (Date.now() - s.startTime.getTime()) / 1000,
    );
    const info = 'rtmpd_stream_info';
    const writeInfo = (out: ExpositionText): void => {
      this.streams();
      for (const stream of this.slots.own) out.sample(info, streamInfoLabelText(stream), 1);
    };
    this.pulled.push(new PulledMetric(info, 'Always 1 per stream with its own series; labels carry its codecs.', 'gauge', writeInfo));
    this.add('rtmpd_streams_overflow', 'Live streams beyond --metrics-max-streams, summed under app/key="_overflow".', 'gauge', () => {
      this.streams();
      return [{ value: this.slots.overflowSize }];
    });
  }

  /** rtmpd_stream_sent_bytes_total: one series per kind of subscriber the stream has sent to, and one for its HLS players once they got a byte. */
  private defineSentBytes(): void {
    const name = 'rtmpd_stream_sent_bytes_total';
    const writeKinds = (out: ExpositionText, labelTexts: SentLabelTexts, bytesByKind: Float64Array, hlsPlayerBytes: number): void => {
      for (let kind = 0; kind < SUBSCRIBER_KINDS.length; kind++) {
        if (bytesByKind[kind]! > 0) out.sample(name, labelTexts.of(kind), bytesByKind[kind]!);
      }
      if (hlsPlayerBytes > 0) out.sample(name, labelTexts.of(HLS_PLAYER), hlsPlayerBytes);
    };
    const write = (out: ExpositionText): void => {
      this.streams();
      for (const stream of this.slots.own) {
        writeKinds(out, streamSentLabelTexts(stream), stream.bytesOutByKind, stream.stats.hlsPlayerBytes);
      }
      for (const source of STREAM_SOURCES) {
        const ended = this.slots.overflowEnded[source];
        const sum = Float64Array.from(ended.bytesOutByKind);
        let hlsPlayerBytes = ended.stats.hlsPlayerBytes + (this.hls?.stats.playerBytesAfterEnd[source] ?? 0);
        for (const stream of this.slots.overflow[source]) {
          for (let kind = 0; kind < SUBSCRIBER_KINDS.length; kind++) sum[kind]! += stream.bytesOutByKind[kind]!;
          hlsPlayerBytes += stream.stats.hlsPlayerBytes;
        }
        writeKinds(out, OVERFLOW_SENT_LABEL_TEXTS[source], sum, hlsPlayerBytes);
      }
    };
    const help =
      "Bytes sent to the stream's subscribers, by kind (subscriber: rtmp, rtmps and http-flv players, recorder, hls segmenter, relay to another pod, forward to another RTMP server: media handed to them; hls-player: playlists and media HLS players downloaded, under _overflow once the stream ended); a kind's series appears with its first byte.";
    this.pulled.push(new PulledMetric(name, help, 'counter', write));
  }

  private defineRelay(): void {
    this.add(
      'rtmpd_relay_latency_seconds',
      'Ingest-to-send delay per packet here: from its last byte arriving (source="relay": from the owner pod) to being queued for every player.',
      'histogram',
      // A source's series appear with its first packet, as a labelled prom-client histogram's do.
      () =>
        STREAM_SOURCES.flatMap((source) =>
          this.relayLatency[source].count > 0 ? this.relayLatency[source].samples('rtmpd_relay_latency_seconds', { source }) : [],
        ),
    );
  }

  private defineSnapshots(): void {
    this.add(
      'rtmpd_snapshots_total',
      'Snapshot requests by outcome: ok (decoded), error (decode failed), cached (the last decode was reused), busy (decoder pool full, answered 503), picture_too_large (the picture is over --max-decode-pixels, answered 422, not decoded).',
      'counter',
      () => [
        { labels: { outcome: 'ok' }, value: this.snapshotDecodes.ok },
        { labels: { outcome: 'error' }, value: this.snapshotDecodes.error },
        { labels: { outcome: 'cached' }, value: this.snapshotStats?.cacheHits ?? 0 },
        { labels: { outcome: 'busy' }, value: this.snapshotStats?.busyRefusals ?? 0 },
        { labels: { outcome: 'picture_too_large' }, value: this.snapshotStats?.pictureRefusals ?? 0 },
      ],
    );
    this.add('rtmpd_snapshot_duration_seconds', 'Time one keyframe-to-JPEG decode took (ffmpeg), ok or error.', 'histogram', () =>
      this.snapshotDuration.samples('rtmpd_snapshot_duration_seconds'),
    );
    this.add(
      'rtmpd_snapshot_file_errors_total',
      'Snapshot files (latest.jpg, keyframes, timestamped JPEGs) that could not be written.',
      'counter',
      () => [{ value: this.snapshotStats?.fileErrors ?? 0 }],
    );
  }

  private defineRecording(): void {
    const read = (field: keyof RecordingCounters) => () => [{ value: this.recording?.[field] ?? 0 }];
    this.add(
      'rtmpd_recording_files_total',
      'Recording files opened (one per segment of every recorded stream).',
      'counter',
      read('filesOpened'),
    );
    this.add(
      'rtmpd_recording_written_bytes_total',
      'Bytes queued for recording files: not those dropped, nor those that came after a file failed.',
      'counter',
      read('bytesWritten'),
    );
    this.add(
      'rtmpd_recording_errors_total',
      'Disk errors that stopped a recording (the stream itself goes on).',
      'counter',
      read('errors'),
    );
    this.add(
      'rtmpd_recording_disk_full_total',
      'Recordings stopped because the disk was full (counted in the errors too).',
      'counter',
      read('diskFull'),
    );
    this.add(
      'rtmpd_recording_dropped_total',
      'Recording fragments (FLV: tag batches and tags) not written: the recording was stopped, the disk fell behind by 32 MiB, or they came after one so dropped, before the next keyframe.',
      'counter',
      read('dropped'),
    );
    this.add('rtmpd_recording_retention_deleted_files_total', 'Recording files deleted by retention.', 'counter', () => [
      { value: this.retention?.deletedFiles ?? 0 },
    ]);
    this.add('rtmpd_recording_retention_deleted_bytes_total', 'Bytes of recording files deleted by retention.', 'counter', () => [
      { value: this.retention?.deletedBytes ?? 0 },
    ]);
  }

  /** Each listening RTMP listener's counters; plain RTMP's, at zero, before watchRtmp. */
  private rtmpListeners(): [RtmpProtocol, RtmpListenerCounters | undefined][] {
    const protocols = this.rtmp?.protocols;
    if (!protocols) return [['rtmp', undefined]];
    return RTMP_PROTOCOLS.flatMap((protocol) => (protocols[protocol] ? [[protocol, protocols[protocol]] as const] : []));
  }

  private defineRtmp(): void {
    /** One sample per listener and label value; `seed` values are exported at 0 before they first count. */
    const labelled =
      (label: string, pick: (s: RtmpListenerCounters) => Readonly<Record<string, number>>, seed: readonly string[] = []) =>
      () =>
        this.rtmpListeners().flatMap(([protocol, counters]) => {
          const values = counters ? pick(counters) : {};
          const keys = new Set([...seed, ...Object.keys(values)]);
          return [...keys].map((k) => ({ labels: { protocol, [label]: k }, value: values[k] ?? 0 }));
        });
    const byProtocol = (pick: (s: RtmpListenerCounters) => number) => () =>
      this.rtmpListeners().map(([protocol, counters]) => ({ labels: { protocol }, value: counters ? pick(counters) : 0 }));
    this.add('rtmpd_connections', 'Open connections by protocol (rtmp, rtmps, http-flv) and state.', 'gauge', () => {
      const out: Sample[] = this.rtmpListeners().flatMap(([protocol, counters]) =>
        CONNECTION_STATES.map((state) => ({ labels: { protocol, state }, value: counters?.connections[state] ?? 0 })),
      );
      // HTTP-FLV players hold a connection for as long as they play.
      out.push({ labels: { protocol: 'http-flv', state: 'playing' }, value: this.subscribers('http-flv') });
      return out;
    });
    this.add(
      'rtmpd_connections_accepted_total',
      'RTMP connections accepted, by protocol (rtmp, rtmps).',
      'counter',
      byProtocol((s) => s.connectionsAccepted),
    );
    this.add(
      'rtmpd_connections_refused_total',
      'RTMP connections refused, by protocol (rtmp, rtmps) and reason: max_connections (--max-connections were open), per_address (--max-connections-per-address from the client), bad_proxy_header and proxy_header_timeout (a --proxy-protocol-from source sent a bad PROXY header, or one it did not finish in time), idle_no_header (it sent nothing in time: a health check that holds its connection), publish_rate (a publish over --max-publishes-per-address-per-minute, refused and its connection closed).',
      'counter',
      labelled('reason', (s) => s.connectionsRefused),
    );
    // The common reasons are exported at 0 from the start, so rates and alerts have a series before the first failure.
    this.add(
      'rtmpd_handshake_failures_total',
      'RTMP handshakes that failed, by protocol (rtmp, rtmps) and reason (handshake_bad_version, handshake_bad_digest, handshake_timeout, ...); failed TLS handshakes are rtmpd_tls_handshake_failures_total.',
      'counter',
      labelled('reason', (s) => s.handshakeFailures, ['handshake_bad_version', 'handshake_timeout']),
    );
    this.add(
      'rtmpd_protocol_errors_total',
      'RTMP connections closed for a protocol violation, by protocol (rtmp, rtmps) and reason (message_too_large, amf_truncated, idle_timeout, ...; internal is a bug in rtmpd).',
      'counter',
      labelled('reason', (s) => s.protocolErrors, [
        'internal',
        'idle_timeout',
        'connect_timeout',
        'start_timeout',
        'pause_timeout',
        'message_timeout',
        'message_too_large',
        'partial_bytes_exceeded',
        'partial_budget_exceeded',
        'too_many_chunk_streams',
      ]),
    );
    this.add(
      'rtmpd_command_errors_total',
      'RTMP commands answered with _error or an error onStatus, by protocol (rtmp, rtmps) and command (connect, publish, play, ...).',
      'counter',
      labelled('command', (s) => s.commandErrors, ['connect', 'publish', 'play']),
    );
    this.add(
      'rtmpd_rtmp_partial_message_bytes',
      'Bytes held for RTMP messages still arriving, over all connections of both protocols (bounded by --partial-messages-max-bytes).',
      'gauge',
      () => [{ value: this.rtmp?.inbound.held ?? 0 }],
    );
    this.add(
      'rtmpd_rtmp_received_bytes_total',
      'Bytes of RTMP read from its connections, by protocol (rtmp, rtmps: the RTMP inside TLS).',
      'counter',
      byProtocol((s) => s.bytesIn),
    );
    this.add(
      'rtmpd_rtmp_sent_bytes_total',
      'Bytes of RTMP written to its connections, by protocol (rtmp, rtmps: the RTMP inside TLS).',
      'counter',
      byProtocol((s) => s.bytesOut),
    );
    this.add(
      'rtmpd_rtmp_received_messages_total',
      'RTMP messages received (all types), by protocol (rtmp, rtmps).',
      'counter',
      byProtocol((s) => s.messagesIn),
    );
    this.add(
      'rtmpd_rtmp_sent_messages_total',
      'RTMP messages sent (all types), by protocol (rtmp, rtmps).',
      'counter',
      byProtocol((s) => s.messagesOut),
    );
  }

  private defineHttp(): void {
    this.add(
      'rtmpd_http_connections_accepted_total',
      "HTTP and HTTPS connections accepted: after a trusted balancer's PROXY header, with a slot for the client's address; HTTPS ones before their TLS handshake.",
      'counter',
      () => [{ value: this.http?.connectionsAccepted ?? 0 }],
    );
    this.add(
      'rtmpd_http_connections_refused_total',
      'HTTP and HTTPS connections refused at accept, by reason: max_connections (--http-max-connections were open; dropped), per_address (--http-max-connections-per-address from the client; answered 429, HTTPS closed before its handshake), bad_proxy_header, proxy_header_timeout and idle_no_header as for RTMP.',
      'counter',
      () =>
        CONNECTION_REFUSALS.map((reason) => ({
          labels: { reason },
          value: this.http?.connectionsRefused[reason] ?? 0,
        })),
    );
    this.add(
      'rtmpd_http_client_errors_total',
      'HTTP connections closed for how their requests arrived, by reason: request_timeout (--http-headers-timeout-seconds, --http-request-timeout-seconds), bad_request, aborted (the client hung up mid-request), pipelined (more than 16 requests sent ahead of their answers), response_stalled (an answer whose socket took none of it for --player-stall-timeout-seconds); and pipelined_play, HTTP-FLV requests sent before the end of an earlier answer, answered 400 pipelined_request in their turn (the connection kept).',
      'counter',
      () => {
        const values = this.http?.clientErrors ?? {};
        return [...new Set(['request_timeout', 'bad_request', 'pipelined', 'response_stalled', ...Object.keys(values)])].map((reason) => ({
          labels: { reason },
          value: values[reason] ?? 0,
        }));
      },
    );
  }

  private defineAuth(): void {
    // The refusals users look for first are exported at 0, so alerts have a series before the first one.
    const seed = ['publish missing_credentials', 'play missing_credentials', 'api missing_token'];
    this.add(
      'rtmpd_auth_refusals_total',
      'Publishes, plays and API calls refused by authorization, by action (publish, play, api) and reason (missing_credentials, bad_secret, bad_signature, expired, bad_token, not_permitted, callback_denied, callback_failed, callback_busy, revoked, no_matching_rule, ...).',
      'counter',
      () => {
        const values = this.auth?.refusals ?? {};
        return [...new Set([...seed, ...Object.keys(values)])].map((label) => {
          const [action = '', reason = ''] = label.split(' ');
          return { labels: { action, reason }, value: values[label] ?? 0 };
        });
      },
    );
    this.add(
      'rtmpd_auth_sessions_ended_total',
      'Publishers and players the server ended: kicked through the API, or revoked (their key withdrawn from its key store, or revoked through the API).',
      'counter',
      () => (['kicked', 'revoked'] as const).map((reason) => ({ labels: { reason }, value: this.auth?.ended[reason] ?? 0 })),
    );
  }
}
