// The operator's metrics as Prometheus stores them when the chart's
// ServiceMonitor scrapes them: the real Prometheus scrapes the operator's real
// registry. The Prometheus Operator, which turns a ServiceMonitor into a
// scrape config, does not run here; its config stands in: honor_labels from
// the rendered ServiceMonitor's endpoint, and the target labels it gives every
// series (`namespace` the operator's, `service`, `endpoint`, `pod`, `container`).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../operator/src/controller/metrics.ts';
import { allFeatures, one, template } from '../lib/chart.ts';
import { eventually } from '../lib/eventually.ts';
import { startPrometheus, type RunningPrometheus } from '../lib/prometheus.ts';

const operatorNamespace = 'rtmpd-system';
const operatorPod = 'rel-rtmpd-operator-5d8f7c9b4-x2x7q';
let server: Server;
let prometheus: RunningPrometheus;

beforeAll(async () => {
  const objects = await template('rel', ['--namespace', operatorNamespace, ...allFeatures]);
  const [endpoint] = (one(objects, 'ServiceMonitor').spec as { endpoints: { port: string; honorLabels?: boolean }[] }).endpoints;
  const metrics = createMetrics('rtmpserver');
  metrics.certificates.set('media', 'live', 'live-tls', new Date('2027-03-01T00:00:00Z'));
  server = createServer((_req, res) => {
    void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const targetLabels = {
    namespace: operatorNamespace,
    service: 'rel-rtmpd-operator-metrics',
    endpoint: endpoint?.port ?? '',
    pod: operatorPod,
    container: 'operator',
  };
  prometheus = await startPrometheus(
    'rel-rtmpd-operator-metrics',
    [{ address: `127.0.0.1:${(server.address() as AddressInfo).port}`, labels: targetLabels }],
    [],
    { honorLabels: endpoint?.honorLabels ?? false },
  );
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  server?.close();
});

describe("the operator's metrics scraped through the chart's ServiceMonitor", () => {
  it("keep the RtmpServer's namespace on the certificate expiry, and the operator's on its other series", async () => {
    const series = await eventually('the certificate expiry to be scraped', async () => {
      const { data } = await prometheus.query('rtmpd_operator_certificate_expiration_timestamp_seconds');
      return data.result.length > 0 ? data.result : undefined;
    });
    expect(series.map((s) => s.metric)).toEqual([
      expect.objectContaining({ namespace: 'media', rtmpserver: 'live', secret: 'live-tls', pod: operatorPod }),
    ]);
    expect(series[0]?.metric).not.toHaveProperty('exported_namespace');
    expect(Number(series[0]?.value[1])).toBe(Date.parse('2027-03-01T00:00:00Z') / 1000);
    const { data } = await prometheus.query('process_start_time_seconds');
    expect(data.result.map((s) => s.metric.namespace)).toEqual([operatorNamespace]);
  });
});
