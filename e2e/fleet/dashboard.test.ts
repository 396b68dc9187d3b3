// The dashboard's streams, players and bitrates over a fleet: two rtmpd
// processes as pods edge-0 and edge-1 of one RtmpServer on the local control
// plane (as in fleet.test.ts), the Debian `prometheus` scraping both with the
// labels a Kubernetes scrape gives them, an ffmpeg publisher on edge-0 and an
// ffmpeg player on edge-1, which relays the stream from edge-0.
//
// Each panel's query, as the dashboard JSON has it, is checked against what
// the RTMP listeners of both pods moved in the same scrapes
// (rtmpd_rtmp_*_bytes_total: media plus a little RTMP framing, and no relay,
// which is HTTP): ingest is what came from the publisher, counted once and
// not again for edge-1's relayed copy; egress is what left for the player,
// not again what edge-0 sent to edge-1's relay. Summed over every
// subscriber and source, as before the `source` and `subscriber` labels,
// each would be about twice that. Publishers and players are counted once
// already: the relay is neither.
//
// The panels and alert rules that read series only a pod of a fleet exports
// (rtmpd_fleet_*: e2e/observability/ runs every other query against a single
// rtmpd) must have those series here, so a misspelt name or label fails.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamView } from '../../rtmpd/src/http/stream-view.ts';
import { publishTestPattern, runFfmpeg, type Publisher } from '../../rtmpd/test/support/processes.ts';
import { eventually, kubectl } from '../cluster/kube.ts';
import { repo } from '../lib/chart.ts';
import { freePort } from '../lib/free-port.ts';
import { startPrometheus, type RunningPrometheus } from '../lib/prometheus.ts';
import { FLEET_ONLY, substituteVariables, vectorSelectors } from '../observability/promql.ts';
import { fleetPodAccount, startFleetPod, type FleetPod } from './pods.ts';

const suffix = randomBytes(3).toString('hex');
const namespace = `dashboard-${suffix}`;
const fleet = 'edge';
const key = `cam${suffix}`;
/** Long enough that a player's first burst (the cached GOP) is a small part of the window. */
const RATE_INTERVAL = '20s';

interface Panel {
  title: string;
  targets?: { expr: string }[];
}
let dir: string;
let prometheus: RunningPrometheus | undefined;
const pods: FleetPod[] = [];
const clients: Publisher[] = [];

/** The one query of the dashboard panel titled `title`, with its variables at "All". */
async function panelQuery(title: string): Promise<string> {
  const dashboard = JSON.parse(await readFile(join(repo, 'charts/rtmpd-operator/files/dashboards/rtmpd.json'), 'utf8')) as {
    panels: Panel[];
  };
  const targets = dashboard.panels.find((p) => p.title === title)?.targets ?? [];
  expect(targets, title).toHaveLength(1);
  return substituteVariables(targets[0]!.expr, RATE_INTERVAL);
}

/** The single value of an instant query. */
async function value(expr: string): Promise<number> {
  const result = await prometheus!.query(expr);
  expect(result.status, `${expr}: ${result.error}`).toBe('success');
  expect(result.data.result, expr).toHaveLength(1);
  return Number(result.data.result[0]!.value[1]);
}

/** The dashboard queries and alert expressions that read a fleet-only series, by panel title or alert name. */
function fleetOnlyExpressions(): (readonly [string, string])[] {
  const chart = join(repo, 'charts/rtmpd-operator/files');
  const dashboard = JSON.parse(readFileSync(join(chart, 'dashboards/rtmpd.json'), 'utf8')) as { panels: Panel[] };
  const rules = (
    parseYaml(readFileSync(join(chart, 'alerts/rtmpd.yaml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
  ).groups.flatMap((g) => g.rules);
  const all = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const)),
    ...rules.map((r) => [r.alert, r.expr] as const),
  ];
  return all.filter(([, expr]) => vectorSelectors(expr).some((selector) => FLEET_ONLY.test(selector)));
}

const bitsPerSecond = (selector: string) => `sum(rate(${selector}[${RATE_INTERVAL}])) * 8`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flux-rtmpd-dashboard-'));
  await kubectl(['create', 'namespace', namespace]);
  const kubeconfig = await fleetPodAccount(namespace, 'edge-rtmpd');
  const ports = { rtmp: await freePort(), http: await freePort() };
  const common = { fleet, namespace, rtmpPort: ports.rtmp, httpPort: ports.http, token: randomBytes(24).toString('hex'), kubeconfig, dir };
  pods.push(
    ...(await Promise.all([
      startFleetPod({ ...common, pod: 'edge-0', ip: '127.0.0.2' }),
      startFleetPod({ ...common, pod: 'edge-1', ip: '127.0.0.3' }),
    ])),
  );
  const [owner, relaying] = pods as [FleetPod, FleetPod];
  prometheus = await startPrometheus(
    'rtmpd',
    pods.map((p) => ({ address: `${p.ip}:${ports.http}`, labels: { namespace, pod: p.pod, app_kubernetes_io_instance: fleet } })),
  );

  clients.push(publishTestPattern(owner.rtmpUrl('live', key), { seconds: 600 }));
  // edge-1 knows the stream and its owner from the claim: a player there makes it relay the stream.
  await eventually('edge-1 lists the stream, owned by edge-0', async () => {
    const res = await fetch(relaying.httpUrl('/api/v1/rtmp/streams'), { signal: AbortSignal.timeout(5000) });
    const { streams } = (await res.json()) as { streams: StreamView[] };
    return streams.some((s) => s.key === key && s.video !== null && s.owner?.pod === 'edge-0') ? true : undefined;
  });
  clients.push(runFfmpeg(['-i', relaying.rtmpUrl('live', key), '-f', 'null', '-']));
  await eventually(
    'the relayed copy on edge-1 in Prometheus',
    async () => {
      const r = await prometheus!.query(`rtmpd_stream_received_bytes_total{pod="edge-1",key="${key}",source="relay"} > 0`);
      return r.data.result.length ? true : undefined;
    },
    30_000,
  );
  // Full rate windows of the relay and the player.
  await new Promise((r) => setTimeout(r, 25_000));
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.child.kill('SIGKILL');
  await prometheus?.stop();
  await Promise.all(pods.map((p) => p.kill()));
  await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
  await rm(dir, { recursive: true, force: true });
});

describe('the dashboard over a fleet with a stream relayed between pods', () => {
  it('has the stream on both pods: received by edge-1 from its owner, and sent by edge-0 to the relay', async () => {
    const ingest = await value(bitsPerSecond('rtmpd_rtmp_received_bytes_total'));
    expect(ingest).toBeGreaterThan(100_000);
    expect(await value(bitsPerSecond('rtmpd_stream_received_bytes_total{pod="edge-1",source="relay"}'))).toBeGreaterThan(ingest / 2);
    expect(await value(bitsPerSecond('rtmpd_stream_sent_bytes_total{pod="edge-0",subscriber="relay"}'))).toBeGreaterThan(ingest / 2);
  });

  it.each(['Live streams', 'Players', 'Players per stream'])(
    'counts one in "%s": the relay is neither a publisher nor a player',
    async (title) => {
      expect(await value(await panelQuery(title))).toBe(1);
    },
  );

  it.each(['Ingest bitrate', 'Bitrate in per stream'])('counts the stream once in "%s": what the publisher sent', async (title) => {
    const panel = await value(await panelQuery(title));
    const rtmpIn = await value(bitsPerSecond('rtmpd_rtmp_received_bytes_total'));
    const ratio = panel / rtmpIn;
    expect(ratio, `${panel} b/s on the panel, ${rtmpIn} b/s of RTMP in`).toBeGreaterThan(0.9);
    expect(ratio, `${panel} b/s on the panel, ${rtmpIn} b/s of RTMP in`).toBeLessThanOrEqual(1.02);
  });

  it.each(['Egress bitrate', 'Bitrate out per stream'])(
    'counts in "%s" what left for the player, not the relay between the pods',
    async (title) => {
      const panel = await value(await panelQuery(title));
      const rtmpOut = await value(bitsPerSecond('rtmpd_rtmp_sent_bytes_total'));
      const ratio = panel / rtmpOut;
      expect(ratio, `${panel} b/s on the panel, ${rtmpOut} b/s of RTMP out`).toBeGreaterThan(0.9);
      expect(ratio, `${panel} b/s on the panel, ${rtmpOut} b/s of RTMP out`).toBeLessThanOrEqual(1.02);
    },
  );

  const fleetOnly = fleetOnlyExpressions();
  it('finds the panels and alerts that read fleet-only series', () => {
    expect(fleetOnly.map(([name]) => name).sort()).toEqual(['Frames dropped for fleet relays', 'RtmpdFleetRelayDroppingFrames']);
  });

  it.each(fleetOnly)('has the fleet-only series "%s" reads, on both pods', async (_name, expr) => {
    const full = await prometheus!.query(substituteVariables(expr, RATE_INTERVAL));
    expect(full.status, `${expr}: ${full.error}`).toBe('success');
    for (const selector of vectorSelectors(expr)) {
      const series = (await prometheus!.query(substituteVariables(selector, RATE_INTERVAL))).data.result;
      expect(series.map((s) => s.metric.pod).sort(), selector).toEqual(['edge-0', 'edge-1']);
    }
  });
});
