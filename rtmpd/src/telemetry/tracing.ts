// OpenTelemetry traces, configured by the standard OTEL_* environment
// variables (OTLP over HTTP/protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL says
// otherwise). With no OTLP endpoint set, neither the SDK nor the API is ever
// loaded and every helper here returns at its first line, so tracing that is
// off costs nothing.
import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, Span, Tracer } from '@opentelemetry/api';
import type { Middleware } from 'koa';
import type { Socket } from 'node:net';
import type { CipherNameAndProtocol, TLSSocket } from 'node:tls';
import { isTlsSocket } from '../tls/socket.ts';

/** The API and rtmpd's tracer while tracing is on. */
let otel: { api: typeof OtelApi; tracer: Tracer } | undefined;

export interface Tracing {
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** True when an OTLP endpoint is configured and the SDK is not disabled. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').split(',').some((e) => e.trim() === 'none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts the tracing SDK when the environment asks for it; returns undefined
 * (and loads nothing) when it does not. Only traces are set up: metrics are
 * Prometheus' job and logs go to stdout. The SDK reads process.env itself.
 */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracingConfigured(env)) return undefined;
  const [{ NodeSDK }, api] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/api')]);
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME, when set, wins through the env resource detector.
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: 'rtmpd' }),
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  otel = { api, tracer: api.trace.getTracer('rtmpd') };
  return {
    shutdown: async () => {
      otel = undefined;
      await sdk.shutdown();
    },
  };
}

/** Trace and span ids of a span, as log fields. */
function spanLogFields(span: Span | undefined): { trace_id?: string; span_id?: string } {
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** pino `mixin`: adds trace_id/span_id of the active span (an API request, a snapshot) to every log line. */
export function traceLogMixin(): { trace_id?: string; span_id?: string } {
  if (!otel) return {};
  return spanLogFields(otel.api.trace.getActiveSpan());
}

/** SpanStatusCode.ERROR, a constant of the API (which is not loaded while tracing is off). */
const STATUS_ERROR = 2 satisfies OtelApi.SpanStatusCode.ERROR;
/** SpanKind.SERVER. */
const KIND_SERVER = 1 satisfies OtelApi.SpanKind.SERVER;

function fail(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: STATUS_ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Runs `fn` inside a span that ends when it settles; errors mark the span and are rethrown. */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!otel) return fn(undefined);
  return otel.tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

interface StreamLike {
  app: string;
  key: string;
  videoTrack?: { codec: string; width?: number; height?: number } | undefined;
  audioTrack?: { codec: string; sampleRate?: number; channels?: number } | undefined;
}

function streamAttributes(stream: StreamLike): Attributes {
  const attributes: Attributes = { 'rtmp.app': stream.app, 'rtmp.stream_key': stream.key };
  if (stream.videoTrack) {
    attributes['rtmp.video.codec'] = stream.videoTrack.codec;
    if (stream.videoTrack.width) attributes['rtmp.video.width'] = stream.videoTrack.width;
    if (stream.videoTrack.height) attributes['rtmp.video.height'] = stream.videoTrack.height;
  }
  if (stream.audioTrack) {
    attributes['rtmp.audio.codec'] = stream.audioTrack.codec;
    if (stream.audioTrack.sampleRate) attributes['rtmp.audio.sample_rate'] = stream.audioTrack.sampleRate;
    if (stream.audioTrack.channels) attributes['rtmp.audio.channels'] = stream.audioTrack.channels;
  }
  return attributes;
}

/** A snapshot decode of a stream's last keyframe. */
export function traceSnapshot<T>(stream: StreamLike, fn: () => Promise<T>): Promise<T> {
  return withSpan('snapshot', streamAttributes(stream), fn);
}

/** Bytes a connection or file has moved, read when its span ends. */
export interface ByteCounts {
  bytesIn?: number;
  bytesOut?: number;
}

/**
 * What OpenTelemetry's semantic conventions put on a connection over TLS:
 * `network.protocol.name` stays the application protocol (`rtmp`, as the
 * HTTP conventions keep `http` for HTTPS), and the `tls.*` attributes say it
 * was encrypted and how: `tls.protocol.name` `tls` and `tls.protocol.version`
 * `1.3` from Node's `TLSv1.3`, `tls.cipher` the IANA name of the cipher suite.
 */
function tlsAttributes(socket: TLSSocket): Attributes {
  const attributes: Attributes = { 'tls.established': true };
  const version = /^(TLS|SSL)v(.+)$/.exec(socket.getProtocol() ?? '');
  if (version) {
    attributes['tls.protocol.name'] = version[1]!.toLowerCase();
    attributes['tls.protocol.version'] = version[2]!;
  }
  // Null once the socket is closed (Node's types leave that out).
  const cipher = socket.getCipher() as CipherNameAndProtocol | null;
  if (cipher?.standardName) attributes['tls.cipher'] = cipher.standardName;
  return attributes;
}

/**
 * One RTMP connection's life: a `rtmp.connection` span from accept to close,
 * with a `rtmp.publish` or `rtmp.play` child from the command to its end
 * carrying app, key, codecs and bytes. Connections are event-driven, not one
 * async chain, so the session holds this object and logs with `logFields()`.
 */
export class ConnectionTrace {
  private span: Span | undefined;
  private role: Span | undefined;
  private roleStream: StreamLike | undefined;
  private error: string | undefined;

  /** `socket` is read here only while tracing is on; a TLSSocket (RTMPS) has finished its handshake. */
  constructor(socket: Pick<Socket, 'remoteAddress' | 'remotePort'>) {
    if (!otel) return;
    this.span = otel.tracer.startSpan('rtmp.connection', {
      kind: KIND_SERVER,
      attributes: {
        'network.protocol.name': 'rtmp',
        'network.peer.address': socket.remoteAddress ?? '',
        'network.peer.port': socket.remotePort ?? 0,
        ...(isTlsSocket(socket) ? tlsAttributes(socket) : {}),
      },
    });
  }

  /** trace_id/span_id for the session's log lines. */
  logFields(): { trace_id?: string; span_id?: string } {
    return spanLogFields(this.role ?? this.span);
  }

  /** The connect command: the app and what the client says it is. */
  connected(app: string, attributes: Attributes = {}): void {
    this.span?.setAttributes({ 'rtmp.app': app, ...attributes });
  }

  /** publish or play accepted for app/key; ends any earlier role span. */
  began(kind: 'publish' | 'play', app: string, key: string): void {
    if (!this.span || !otel) return;
    this.ended({});
    this.span.setAttributes({ 'rtmp.role': kind, 'rtmp.app': app, 'rtmp.stream_key': key });
    const { api, tracer } = otel;
    this.role = tracer.startSpan(
      `rtmp.${kind}`,
      { attributes: { 'rtmp.app': app, 'rtmp.stream_key': key } },
      api.trace.setSpan(api.context.active(), this.span),
    );
  }

  /** The stream being published or played, so its codecs land on the span. */
  stream(stream: StreamLike): void {
    this.roleStream = stream;
  }

  /** publish or play ended (unpublish, stop, the stream ended). */
  ended(bytes: ByteCounts, err?: unknown): void {
    const role = this.role;
    if (!role) return;
    this.role = undefined;
    if (this.roleStream) role.setAttributes(streamAttributes(this.roleStream));
    this.roleStream = undefined;
    setBytes(role, bytes);
    if (err !== undefined) fail(role, err);
    role.end();
  }

  /** Why the server is about to close the connection (a protocol error, a timeout). */
  failed(reason: string): void {
    this.error ??= reason;
  }

  /** The connection closed; later calls do nothing. */
  close(bytes: ByteCounts): void {
    const span = this.span;
    if (!span) return;
    this.span = undefined;
    this.ended(bytes, this.error);
    setBytes(span, bytes);
    if (this.error !== undefined) fail(span, this.error);
    span.end();
  }
}

function setBytes(span: Span, bytes: ByteCounts): void {
  if (bytes.bytesIn !== undefined) span.setAttribute('rtmp.bytes_received', bytes.bytesIn);
  if (bytes.bytesOut !== undefined) span.setAttribute('rtmp.bytes_sent', bytes.bytesOut);
}

/** One recording file, from open to close. */
export class RecordingTrace {
  private span: Span | undefined;

  constructor(stream: StreamLike, path: string) {
    if (!otel) return;
    this.span = otel.tracer.startSpan('recording.segment', { attributes: { ...streamAttributes(stream), 'file.path': path } });
  }

  /** The file is closed (or failed); later calls do nothing. */
  end(stream: StreamLike, bytesWritten: number, err?: unknown): void {
    const span = this.span;
    if (!span) return;
    this.span = undefined;
    span.setAttributes({ ...streamAttributes(stream), 'recording.bytes_written': bytesWritten });
    if (err !== undefined) fail(span, err);
    span.end();
  }
}

/**
 * Koa middleware: a server span per API request, continuing a caller's W3C
 * traceparent, named by the matched route (`GET /api/streams/:id`). For an
 * HTTP-FLV response the span covers the handler, not the whole playback.
 */
export function koaTracing(): Middleware {
  return async (ctx, next) => {
    if (!otel) return next();
    const { api, tracer } = otel;
    const parent = api.propagation.extract(api.context.active(), ctx.headers);
    const span = tracer.startSpan(
      ctx.method,
      {
        kind: KIND_SERVER,
        attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path, 'url.scheme': ctx.protocol, 'client.address': ctx.ip },
      },
      parent,
    );
    let status: number | undefined;
    try {
      await api.context.with(api.trace.setSpan(parent, span), next);
    } catch (err) {
      fail(span, err);
      // An error handler outside this middleware has yet to set the status.
      const expose = (err as { status?: unknown }).status;
      status = typeof expose === 'number' ? expose : 500;
      throw err;
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      if (typeof route === 'string') {
        span.setAttribute('http.route', route);
        span.updateName(`${ctx.method} ${route}`);
      }
      status ??= ctx.status;
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: STATUS_ERROR });
      span.end();
    }
  };
}
