// The dashboard and the alert rules proven against a real Prometheus: a live
// rtmpd (tracing on, exporting to an OTLP receiver in this test) is fed by
// ffmpeg publishers and players, the Debian `prometheus` binary scrapes it
// every second on 127.0.0.1, and every PromQL expression of the dashboard
// JSON and of the rules file is run through Prometheus' HTTP API.
//
// Dashboard queries must each return series. Alert expressions are true only
// when something is wrong, so for each rule the full expression must evaluate
// without error and every selector it reads must return series; the one
// metric that needs kube-state-metrics (KSM_ONLY) is exempt, and so are the
// series only a pod of a fleet exports (FLEET_ONLY), which
// e2e/fleet/dashboard.test.ts checks over two pods. Faults made on purpose
// must make their alerts' expressions return them: a forward to a port
// nothing listens on (RtmpdForwardFailing; cam1's other forward goes to a
// second rtmpd), a trusted balancer address (127.0.0.2) sending a bad PROXY
// header or none (RtmpdProxyHeadersRefused), a publisher dropped at the
// end (RtmpdPublisherDropped), and an HTTPS listener serving a certificate
// valid for one day (RtmpdCertificateExpiringSoon's expression).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../lib/eventually.ts';
import { freePort } from '../lib/free-port.ts';
import { startPrometheus, type RunningPrometheus } from '../lib/prometheus.ts';
import {
  publishTestPattern,
  runFfmpeg,
  startServer,
  stopAll,
  type Publisher,
  type RunningServer,
} from '../../rtmpd/test/support/processes.ts';
import { selfSigned } from '../../rtmpd/test/support/certificates.ts';
import { OtlpReceiver } from './otlp-receiver.ts';
import { FLEET_ONLY, labelValuesSelector, readsOnly, substituteVariables, vectorSelectors } from './promql.ts';

const REPO = resolve(import.meta.dirname, '../..');
const DASHBOARD = join(REPO, 'charts/rtmpd-operator/files/dashboards/rtmpd.json');
const RULES = join(REPO, 'charts/rtmpd-operator/files/alerts/rtmpd.yaml');
/** Metrics that only kube-state-metrics exports: no local Prometheus can have them. */
const KSM_ONLY = ['kube_pod_container_status_restarts_total'];
/** The balancer address rtmpd trusts to send PROXY headers; every other client of the test is 127.0.0.1. */
const BALANCER = '127.0.0.2';
const RATE_INTERVAL = '10s';
const CERTIFICATE_DIR = join(tmpdir(), `rtmpd-observability-${process.pid}`);

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
let receiver: OtlpReceiver;
let server: RtmpServerUnderTest;
let destination: RunningServer;
let prometheus: RunningPrometheus | undefined;
let query: RunningPrometheus['query'];
const publishers: Publisher[] = [];
let httpFlv: AbortController;
let slowPlayer: Socket;
let snapshotTimer: NodeJS.Timeout;
const savedEnv = { ...process.env };

type RtmpServerUnderTest = RunningServer;

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const rules = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.targets?.length);

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  // rtmpd inherits these: traces go to the receiver, batched briefly.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
  process.env.OTEL_SERVICE_NAME = 'rtmpd-observability-test';
  delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
  delete process.env.OTEL_SDK_DISABLED;
  // One stream gets its own series, the second is summed under _overflow; small player queues so a stuck player drops frames.
  // cam1 is forwarded to a second rtmpd and to a port nothing listens on (retried every 1-2 s);
  // the RTMP and HTTP listeners expect PROXY headers from BALANCER.
  // The destination exports no traces: its spans of the forwarded cam1 (a publish of live/cam1 too) would race the origin's.
  destination = await startServer(['--recording-enabled', 'false', '--snapshot-enabled', 'false'], { OTEL_SDK_DISABLED: 'true' });
  const deadPort = await freePort();
  const forwardRules = [
    { app: 'live', key: 'cam1', urls: [`rtmp://127.0.0.1:${destination.rtmpPort}/live/cam1`, `rtmp://127.0.0.1:${deadPort}/live/cam1`] },
  ];
  // An HTTPS listener whose certificate expires within the 14 days of RtmpdCertificateExpiringSoon.
  const certificate = await selfSigned(CERTIFICATE_DIR, 'rtmpd-observability', 1);
  server = await startServer([
    ...['--https-bind', '127.0.0.1:0', '--tls-cert-file', certificate.certFile, '--tls-key-file', certificate.keyFile],
    '--metrics-max-streams',
    '1',
    '--player-max-buffer-bytes',
    '65536',
    '--player-stall-timeout-seconds',
    '3600',
    '--forward-rules',
    JSON.stringify(forwardRules),
    '--forward-retry-max-seconds',
    '2',
    '--proxy-protocol',
    'rtmp,http',
    '--proxy-protocol-from',
    BALANCER,
    '--proxy-protocol-timeout-seconds',
    '1',
  ]);

  // Prometheus scraping rtmpd every second, with the alert rules loaded.
  prometheus = await startPrometheus('rtmpd', [{ address: `127.0.0.1:${server.httpPort}` }], [RULES]);
  query = prometheus.query;
  // Target discovery takes a few seconds: traffic starts once rtmpd's zeros are on record.
  await eventually(
    'a first scrape of rtmpd',
    async () => ((await query('up{job="rtmpd"} == 1')).data.result.length ? true : undefined),
    30_000,
  );

  // Traffic: two publishers, an RTMP player, an HTTP-FLV player, an HLS player, a player that never reads, a failed play, snapshots.
  // cam1 first, so it is the stream with its own series.
  const live = (key: string) => async () =>
    JSON.stringify(await (await fetch(server.httpUrl('/api/v1/rtmp/streams'))).json()).includes(key) ? true : undefined;
  publishers.push(publishTestPattern(server.rtmpUrl('live', 'cam1'), { seconds: 600, size: '640x360' }));
  await eventually('cam1 live', live('cam1'));
  publishers.push(publishTestPattern(server.rtmpUrl('live', 'cam2'), { seconds: 600, size: '320x240' }));
  await eventually('cam2 live', live('cam2'));
  publishers.push(runFfmpeg(['-i', server.rtmpUrl('live', 'cam1'), '-f', 'null', '-']));
  runFfmpeg(['-i', server.rtmpUrl('live', 'missing'), '-f', 'null', '-']);
  runFfmpeg(['-i', server.httpUrl('/live/cam1/index.m3u8'), '-f', 'null', '-']);
  httpFlv = new AbortController();
  void fetch(server.httpUrl('/live/cam1.flv'), { signal: httpFlv.signal })
    .then(async (res) => {
      for await (const _chunk of res.body!) void _chunk;
    })
    .catch(() => undefined);
  slowPlayer = connect(server.httpPort, '127.0.0.1', () => slowPlayer.write('GET /live/cam1.flv HTTP/1.1\r\nHost: rtmpd\r\n\r\n'));
  slowPlayer.pause();
  slowPlayer.on('error', () => undefined);
  const snapshot = () =>
    void fetch(server.httpUrl('/api/v1/rtmp/streams/rtmp/live/cam1/snapshot'))
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  snapshot();
  snapshotTimer = setInterval(snapshot, 2000);
  // The balancer: RTMP handshakes with no PROXY header before them on the RTMP port (a balancer
  // without send-proxy), and headers that stop half-way on the HTTP port.
  for (let i = 0; i < 8; i++) {
    fromBalancer(server.rtmpPort, Buffer.alloc(1537, 3));
    fromBalancer(server.httpPort, Buffer.from('PROXY TCP4 203.0.'));
  }

  // Enough scrapes for every rate window, with the streams live.
  await eventually('relay latency and snapshot data in Prometheus', async () => {
    const a = await query(`sum(rate(rtmpd_relay_latency_seconds_count[${RATE_INTERVAL}])) > 0`);
    const b = await query(`sum(rate(rtmpd_snapshots_total{outcome="ok"}[${RATE_INTERVAL}])) > 0`);
    return a.data.result.length && b.data.result.length ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 12_000));
}, 180_000);

/** The first value of an instant query, with the dashboard variables at "All". */
async function value(expr: string): Promise<number> {
  return Number((await query(substituteVariables(expr, RATE_INTERVAL))).data.result[0]?.value[1]);
}

/** A connection from the trusted balancer address that sends `bytes` (or nothing) and is left for rtmpd to close. */
function fromBalancer(port: number, bytes?: Buffer): void {
  const socket = connect({ port, host: '127.0.0.1', localAddress: BALANCER }, () => bytes && socket.write(bytes));
  socket.on('error', () => undefined);
  socket.resume();
}

afterAll(async () => {
  clearInterval(snapshotTimer);
  httpFlv?.abort();
  slowPlayer?.destroy();
  stopAll();
  await prometheus?.stop();
  await server?.stop();
  await destination?.stop();
  await receiver?.close();
  await rm(CERTIFICATE_DIR, { recursive: true, force: true });
  process.env = savedEnv;
});

describe('rtmpd under a real Prometheus', () => {
  it('serves /metrics that promtool accepts', async () => {
    const text = await (await fetch(server.httpUrl('/metrics'))).text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
    expect(text).toContain('rtmpd_stream_info{app="live",key="cam1",source="publisher",video_codec="h264",audio_codec="aac"} 1');
    expect(text).toMatch(/rtmpd_stream_received_bytes_total\{app="_overflow",key="_overflow",source="publisher"\} [1-9]/);
    expect(text).toMatch(/rtmpd_stream_sent_bytes_total\{app="live",key="cam1",source="publisher",subscriber="http-flv"\} [1-9]/);
  });

  it('loads the alert rules and evaluates every one without error', async () => {
    const res = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = res.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert ?? r.record).sort());
    await eventually(
      'every rule evaluated',
      async () => {
        const again = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as typeof res;
        const all = again.data.groups.flatMap((g) => g.rules);
        return all.every((r) => r.health === 'ok') ? true : undefined;
      },
      15_000,
    );
  });

  it("has the dashboard variables' label_values() selectors", async () => {
    const variables = dashboard.templating.list.filter((v) => v.type === 'query');
    expect(variables.map((v) => v.name)).toEqual(['namespace', 'rtmpserver', 'stream']);
    for (const variable of variables) {
      const q = typeof variable.query === 'string' ? variable.query : variable.query.query;
      const result = await query(substituteVariables(labelValuesSelector(q), RATE_INTERVAL));
      expect(result.status, q).toBe('success');
      expect(result.data.result.length, `variable ${variable.name}: ${q}`).toBeGreaterThan(0);
    }
  });

  it.each(
    panels.flatMap((p) =>
      p.targets!.filter((t) => !readsOnly(t.expr, FLEET_ONLY)).map((t) => [`${p.title} / ${t.refId}`, t.expr] as const),
    ),
  )('dashboard query returns series: %s', async (_name, expr) => {
    const result = await query(substituteVariables(expr, RATE_INTERVAL));
    expect(result.status, `${expr}: ${result.error}`).toBe('success');
    expect(result.data.result.length, expr).toBeGreaterThan(0);
  });

  it.each(rules.map((r) => [r.alert ?? r.record!, r.expr] as const))(
    'alert %s evaluates and every selector it reads has series',
    async (_name, expr) => {
      const full = await query(expr);
      expect(full.status, `${expr}: ${full.error}`).toBe('success');
      const selectors = vectorSelectors(expr);
      expect(selectors.length).toBeGreaterThan(0);
      for (const selector of selectors) {
        if (KSM_ONLY.some((name) => selector.startsWith(name)) || FLEET_ONLY.test(selector)) continue;
        const result = await query(selector);
        expect(result.data.result.length, `${selector} (in ${expr})`).toBeGreaterThan(0);
      }
    },
  );

  it('shows live numbers, not just series', async () => {
    expect(await value('sum(rtmpd_publishers)')).toBe(2);
    expect(await value('sum(rtmpd_players)')).toBeGreaterThanOrEqual(2);
    expect(await value('sum(rtmpd_streams_overflow)')).toBe(1);
    expect(await value('sum(rtmpd_connections{state="publishing"})')).toBe(2);
    expect(await value(`sum(rate(rtmpd_stream_received_bytes_total[$__rate_interval])) * 8`)).toBeGreaterThan(50_000);
    expect(await value(`sum(increase(rtmpd_command_errors_total{command="play"}[5m]))`)).toBeGreaterThan(0);
    expect(await value('sum(rtmpd_snapshots_total{outcome="ok"})')).toBeGreaterThan(0);
    expect(await value('sum(rtmpd_recordings_active)')).toBe(2);
    const p99 = await value(`histogram_quantile(0.99, sum by (le) (rate(rtmpd_relay_latency_seconds_bucket[$__rate_interval])))`);
    expect(p99).toBeGreaterThan(0);
    expect(p99).toBeLessThan(2);
    const dropped = await value('sum(rtmpd_stream_dropped_frames_total)');
    console.log(`relay latency p99 ${(p99 * 1000).toFixed(2)} ms; frames dropped for the stuck player: ${dropped}`);
  });

  it("shows cam1's forwards: one sending to the second rtmpd at about the stream's bitrate, one failing", async () => {
    expect(await value('sum(rtmpd_forwards{state="sending"})')).toBe(1);
    // The port nothing listens on refuses each connect: reason connection (not timeout, closed or refused).
    expect(await value(`sum(increase(rtmpd_forward_failures_total{reason="connection"}[1m]))`)).toBeGreaterThan(3);
    const forwarded = panels.find((p) => p.title === 'Bitrate forwarded per stream')!.targets![0]!.expr;
    // One instant query, so both sides read the same scrapes.
    const share = await value(
      `sum(${forwarded}) / (sum(rate(rtmpd_stream_received_bytes_total{key="cam1",source="publisher"}[$__rate_interval])) * 8)`,
    );
    expect(share, forwarded).toBeGreaterThan(0.5);
    expect(share, forwarded).toBeLessThan(2);
    const failing = (await query(rules.find((r) => r.alert === 'RtmpdForwardFailing')!.expr)).data.result;
    expect(failing, 'RtmpdForwardFailing').toHaveLength(1);
  });

  it("RtmpdCertificateExpiringSoon's expression returns the HTTPS listener's one-day certificate, RtmpdCertificateExpired's nothing", async () => {
    const expr = (alert: string) => rules.find((r) => r.alert === alert)!.expr;
    const expiring = (await query(expr('RtmpdCertificateExpiringSoon'))).data.result;
    expect(expiring.map((s) => s.metric.listener)).toEqual(['https']);
    const left = Number(expiring[0]!.value[1]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(86400);
    expect((await query(expr('RtmpdCertificateExpired'))).data.result).toEqual([]);
  });

  it("RtmpdProxyHeadersRefused's expression returns both reasons the balancer's connections were refused for", async () => {
    const rule = rules.find((r) => r.alert === 'RtmpdProxyHeadersRefused')!;
    const reasons = await eventually(
      'both reasons over the threshold',
      async () => {
        const found = (await query(rule.expr)).data.result.map((s) => s.metric.reason).sort();
        return found.length === 2 ? found : undefined;
      },
      30_000,
    );
    expect(reasons).toEqual(['bad_proxy_header', 'proxy_header_timeout']);
    expect(await value('sum(rtmpd_connections_refused_total{reason="bad_proxy_header"})')).toBe(8);
    expect(await value('sum(rtmpd_http_connections_refused_total{reason="proxy_header_timeout"})')).toBe(8);
  });

  it.each(['Egress bitrate', 'Bitrate out per stream'])(
    'adds in "%s" what the HLS player downloads: about the stream\'s bitrate',
    async (title) => {
      const expr = substituteVariables(panels.find((p) => p.title === title)!.targets![0]!.expr, RATE_INTERVAL);
      const withoutHls = expr.replace('|hls-player', '');
      expect(withoutHls).not.toBe(expr);
      // One instant query, so both sides read the same scrapes.
      const hlsShare = `(sum(${expr}) - sum(${withoutHls})) / (sum(rate(rtmpd_stream_received_bytes_total{key="cam1",source="publisher"}[${RATE_INTERVAL}])) * 8)`;
      const result = await query(hlsShare);
      expect(result.status, `${hlsShare}: ${result.error}`).toBe('success');
      const share = Number(result.data.result[0]?.value[1]);
      expect(share, hlsShare).toBeGreaterThan(0.5);
      expect(share, hlsShare).toBeLessThan(2);
    },
  );

  it('exports traces over OTLP/HTTP protobuf with app, key, codecs and bytes; the publish log line carries its trace id', async () => {
    // The play of a stream that is not live: a connection span with its app and no role.
    const failedPlay = await receiver.waitFor(
      (s) => s.name === 'rtmp.connection' && s.attributes['rtmp.app'] === 'live' && s.attributes['rtmp.role'] === undefined,
    );
    expect(failedPlay.attributes['network.peer.address']).toBe('127.0.0.1');
    const snapshot = await receiver.waitFor((s) => s.name === 'snapshot' && s.attributes['rtmp.stream_key'] === 'cam1');
    expect(snapshot.attributes['rtmp.video.codec']).toBe('h264');
    expect(snapshot.resource['service.name']).toBe('rtmpd-observability-test');
    const api = await receiver.waitFor((s) => s.name === 'GET /api/v1/rtmp/streams/rtmp/:app/:key/snapshot');
    expect(api.attributes['http.response.status_code']).toBe(200);
    expect(snapshot.traceId).toBeDefined();

    // End cam1's publisher: its publish and connection spans and its recording file span are exported.
    publishers[0]!.child.kill('SIGINT');
    const published = await receiver.waitFor((s) => s.name === 'rtmp.publish' && s.attributes['rtmp.stream_key'] === 'cam1');
    expect(published.attributes).toMatchObject({
      'rtmp.app': 'live',
      'rtmp.video.codec': 'h264',
      'rtmp.video.width': 640,
      'rtmp.video.height': 360,
      'rtmp.audio.codec': 'aac',
    });
    expect(published.attributes['rtmp.bytes_received']).toBeGreaterThan(100_000);
    const connection = await receiver.waitFor((s) => s.name === 'rtmp.connection' && s.spanId === published.parentSpanId);
    expect(connection.attributes['rtmp.role']).toBe('publish');
    const segment = await receiver.waitFor((s) => s.name === 'recording.segment' && s.attributes['rtmp.stream_key'] === 'cam1');
    expect(segment.attributes['recording.bytes_written']).toBeGreaterThan(100_000);
    expect(String(segment.attributes['file.path'])).toMatch(/live\/cam1\/.*\.mp4$/);
    // cam1's RTMP player is ended with the stream.
    const played = await receiver.waitFor((s) => s.name === 'rtmp.play' && s.attributes['rtmp.stream_key'] === 'cam1');
    expect(played.attributes['rtmp.bytes_sent']).toBeGreaterThan(100_000);
    const logged = server.logs.find((l) => l.msg === 'rtmp publish' && String(l.stream).endsWith('/cam1'));
    expect(logged?.trace_id).toBe(published.traceId);
    expect(logged?.span_id).toBe(published.spanId);
  });

  it("RtmpdPublisherDropped's expression returns the stream whose publisher went away", async () => {
    const rule = rules.find((r) => r.alert === 'RtmpdPublisherDropped')!;
    const dropped = await eventually(
      'cam1 reported as dropped',
      async () => {
        const result = await query(rule.expr);
        return result.data.result.find((s) => s.metric.key === 'cam1');
      },
      30_000,
    );
    expect(dropped.metric.app).toBe('live');
  });
});

describe('promql helpers', () => {
  it('lists the selectors of an expression, skipping functions, label lists, ranges and strings', () => {
    expect(
      vectorSelectors(
        'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{x=~"a{b}"}[5m]))) > 2 unless on (app) b offset 5m and c',
      ),
    ).toEqual(['a_bucket{x=~"a{b}"}', 'b', 'c']);
    expect(labelValuesSelector('label_values(rtmpd_stream_info{namespace=~"$namespace"}, key)')).toBe(
      'rtmpd_stream_info{namespace=~"$namespace"}',
    );
  });
});
