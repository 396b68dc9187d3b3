// A minimal OTLP/HTTP trace receiver for tests: accepts POST /v1/traces in
// protobuf (what rtmpd's exporter sends by default) or JSON, decodes the
// ExportTraceServiceRequest with protobufjs and keeps the spans.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

// The subset of opentelemetry-proto (trace/v1, common/v1, resource/v1) a span needs.
const PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const ExportTraceServiceRequest = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('otlp.ExportTraceServiceRequest');

type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttributeValue>;
  events: string[];
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
  scope: string;
  /** The Content-Type the exporter sent. */
  contentType: string;
}

interface RawValue {
  string_value?: string;
  bool_value?: boolean;
  int_value?: number | string;
  double_value?: number;
  array_value?: { values?: RawValue[] };
}
interface RawKeyValue {
  key: string;
  value?: RawValue;
}
interface RawSpan {
  trace_id?: Uint8Array;
  span_id?: Uint8Array;
  parent_span_id?: Uint8Array;
  name?: string;
  kind?: number;
  start_time_unix_nano?: number | string;
  end_time_unix_nano?: number | string;
  attributes?: RawKeyValue[];
  events?: { name?: string }[];
  status?: { code?: number; message?: string };
}
interface RawRequest {
  resource_spans?: { resource?: { attributes?: RawKeyValue[] }; scope_spans?: { scope?: { name?: string }; spans?: RawSpan[] }[] }[];
}

function value(v: RawValue | undefined): AttributeValue {
  if (!v) return undefined;
  if (v.string_value !== undefined) return v.string_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.int_value !== undefined) return Number(v.int_value);
  if (v.double_value !== undefined) return v.double_value;
  if (v.array_value) return (v.array_value.values ?? []).map(value);
  return undefined;
}
const attrs = (list: RawKeyValue[] | undefined) => Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));
const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('hex');

/** Decodes an OTLP/protobuf ExportTraceServiceRequest body into spans. */
function decodeTraces(body: Buffer, contentType = 'application/x-protobuf'): ReceivedSpan[] {
  const message = ExportTraceServiceRequest.decode(body);
  const request = ExportTraceServiceRequest.toObject(message, { longs: String, bytes: Array, defaults: false }) as RawRequest;
  const spans: ReceivedSpan[] = [];
  for (const rs of request.resource_spans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scope_spans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startNs: BigInt(s.start_time_unix_nano ?? 0),
          endNs: BigInt(s.end_time_unix_nano ?? 0),
          attributes: attrs(s.attributes),
          events: (s.events ?? []).map((e) => e.name ?? ''),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
          contentType,
        });
      }
    }
  }
  return spans;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly requests: { path: string; contentType: string }[] = [];
  private readonly server: Server;
  private waiters: (() => void)[] = [];

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(): Promise<OtlpReceiver> {
    const server = createServer();
    const receiver = new OtlpReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const contentType = req.headers['content-type'] ?? '';
        receiver.requests.push({ path: req.url ?? '', contentType });
        if (req.method !== 'POST' || req.url !== '/v1/traces' || !contentType.includes('protobuf')) {
          res.writeHead(415).end();
          return;
        }
        try {
          receiver.spans.push(...decodeTraces(Buffer.concat(chunks), contentType));
        } catch (err) {
          res.writeHead(400).end(String(err));
          return;
        }
        // An empty ExportTraceServiceResponse is a zero-length protobuf message.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        for (const wake of receiver.waiters.splice(0)) wake();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once a span matches, or rejects after `timeoutMs`. */
  async waitFor(match: (span: ReceivedSpan) => boolean, timeoutMs = 15_000): Promise<ReceivedSpan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.spans.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching span within ${timeoutMs} ms; received: ${this.spans.map((s) => s.name).join(', ') || 'none'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
