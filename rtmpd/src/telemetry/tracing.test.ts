import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { ConnectionTrace, koaTracing, RecordingTrace, startTracing, traceLogMixin, tracingConfigured, withSpan } from './tracing.ts';

describe('tracing when no OTLP endpoint is set', () => {
  it('is configured only by an OTLP endpoint, and not when disabled', () => {
    expect(tracingConfigured({})).toBe(false);
    expect(tracingConfigured({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });

  it('starts no SDK, registers no tracer provider, and every helper is a no-op', async () => {
    expect(await startTracing({})).toBeUndefined();
    expect(trace.getTracer('probe').startSpan('probe').isRecording()).toBe(false);
    const connection = new ConnectionTrace({ remoteAddress: '127.0.0.1', remotePort: 1 });
    connection.began('play', 'live', 'k');
    expect(connection.logFields()).toEqual({});
    connection.close({ bytesIn: 1 });
    new RecordingTrace({ app: 'a', key: 'b' }, '/x').end({ app: 'a', key: 'b' }, 1);
    expect(await withSpan('x', {}, async (span) => span)).toBeUndefined();
    expect(traceLogMixin()).toEqual({});
    let called = false;
    await koaTracing()({} as never, async () => {
      called = true;
    });
    expect(called).toBe(true);
  });
});
