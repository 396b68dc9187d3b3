// The fleet on the local control plane: three rtmpd processes as the three
// pods of one RtmpServer (pod IPs 127.0.0.2-4, the same ports), the real
// kube-apiserver holding their Leases and stream claims, and the pods'
// ServiceAccount limited to the Role the operator gives them. ffmpeg and
// ffprobe are the clients; the failover time and the API writes measured
// here are written to .artifacts/fleet/figures.json.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FleetRecordingList } from '../../rtmpd/src/http/recordings-api.ts';
import type { StreamView } from '../../rtmpd/src/http/stream-view.ts';
import { selfSigned } from '../../rtmpd/test/support/certificates.ts';
import { metric, probe, publishTestPattern, type Publisher } from '../../rtmpd/test/support/processes.ts';
import { RtmpClient, type StatusInfo } from '../../rtmpd/test/support/rtmp-client.ts';
import { eventually, kubectl, kubectlJson } from '../cluster/kube.ts';
import { launchChromium } from '../lib/chromium.ts';
import { repo } from '../lib/chart.ts';
import { freePort } from '../lib/free-port.ts';
import { fleetPodAccount, startFleetPod, type FleetPod } from './pods.ts';

const suffix = randomBytes(3).toString('hex');
const namespace = `fleet-${suffix}`;
const fleet = 'edge';
const token = randomBytes(24).toString('hex');
const key = `cam${suffix}`;
/** The API token (deleting a recording needs one), the same on every pod. */
const apiToken = randomBytes(16).toString('hex');
const figures: Record<string, unknown> = {};
/** Small renditions of a small source: the transcode costs little CPU beside the three pods. */
const ABR_LADDER = [
  { name: '120p', height: 120, videoBitrate: 150, audioBitrate: 32 },
  { name: '90p', height: 90, videoBitrate: 100, audioBitrate: 32 },
];

let dir: string;
let kubeconfig: string;
let ports: { rtmp: number; rtmps: number; http: number };
const pods = new Map<string, FleetPod>();
const publishers: Publisher[] = [];
const clients: RtmpClient[] = [];

interface LeaseJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { holderIdentity?: string; renewTime?: string };
}

const leases = async (kind: 'pod' | 'stream'): Promise<LeaseJson[]> =>
  (
    await kubectlJson<{ items: LeaseJson[] }>([
      'get',
      'leases',
      '-n',
      namespace,
      '-l',
      `media.fluxiot.io/fleet=${fleet},media.fluxiot.io/lease=${kind}`,
    ])
  ).items;

/** The claim of `streamId`, while a pod holds one. */
const claimOf = async (streamId: string): Promise<LeaseJson | undefined> =>
  (await leases('stream')).find((l) => l.metadata.annotations?.['media.fluxiot.io/stream'] === streamId);

async function startPod(name: string, ip: string, extra: { graceSeconds?: number } = {}): Promise<FleetPod> {
  const pod = await startFleetPod({
    fleet,
    namespace,
    pod: name,
    ip,
    rtmpPort: ports.rtmp,
    httpPort: ports.http,
    token,
    kubeconfig,
    dir,
    extraArgs: [
      `--api-token-file=${join(dir, 'api.tokens')}`,
      // Shorter than the Lease: a publish that waits out a dead owner's claim outlasts it (the checks' time is not the client's).
      '--start-timeout-seconds=5',
      // Adaptive bitrate for the abr app alone, so the other streams here are not transcoded.
      `--transcode-rules=${JSON.stringify([{ app: 'abr', renditions: ABR_LADDER }])}`,
      ...[
        `--rtmps-bind=${ip}:${ports.rtmps}`,
        `--tls-cert-file=${join(dir, 'tls', 'tls.crt')}`,
        `--tls-key-file=${join(dir, 'tls', 'tls.key')}`,
      ],
    ],
    ...extra,
  });
  pods.set(name, pod);
  return pod;
}

const pod = (name: string): FleetPod => {
  const p = pods.get(name);
  if (!p) throw new Error(`no pod ${name}`);
  return p;
};

async function streams(p: FleetPod): Promise<StreamView[]> {
  const res = await fetch(p.httpUrl('/api/v1/rtmp/streams'), { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { streams: StreamView[] }).streams;
}

/** An RTMP player that records every onStatus code it hears. */
async function player(url: string): Promise<{ client: RtmpClient; codes: string[]; media: () => number }> {
  const client = await RtmpClient.connect(url);
  clients.push(client);
  const codes: string[] = [];
  let frames = 0;
  client.on('status', (info: StatusInfo) => codes.push(String(info.code)));
  client.on('media', () => frames++);
  await client.play();
  return { client, codes, media: () => frames };
}

const ownerOf = async (p: FleetPod, id: string): Promise<string | undefined> =>
  (await streams(p)).find((s) => s.stream_id === id && s.video !== null)?.owner?.pod;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flux-rtmpd-fleet-'));
  await writeFile(join(dir, 'api.tokens'), `${apiToken}\n`);
  await kubectl(['create', 'namespace', namespace]);
  kubeconfig = await fleetPodAccount(namespace, 'edge-rtmpd');
  await selfSigned(join(dir, 'tls'));
  ports = { rtmp: await freePort(), rtmps: await freePort(), http: await freePort() };
  await Promise.all([startPod('edge-0', '127.0.0.2'), startPod('edge-1', '127.0.0.3'), startPod('edge-2', '127.0.0.4')]);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  for (const p of publishers) p.child.kill('SIGKILL');
  await Promise.all([...pods.values()].map((p) => p.kill()));
  const out = join(repo, '.artifacts/fleet');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
  if (process.env.FLUX_RTMPD_KEEP_E2E === '1') process.stderr.write(`fleet: logs kept in ${dir}\n`);
  else await rm(dir, { recursive: true, force: true });
});

describe('three rtmpd pods of one RtmpServer on the local control plane', () => {
  // Each step builds on the one before: after a failure the rest are skipped, not failed again.
  let broken = false;
  beforeEach((ctx) => {
    if (broken) ctx.skip();
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    broken = true;
    for (const p of pods.values()) process.stderr.write(`--- ${p.pod} ---\n${(await p.log()).slice(-4000)}\n`);
  });

  const id = `rtmp/live/${key}`;

  it('each pod holds a Lease of its own in the API server, labelled with the fleet', async () => {
    const found = await eventually('three pod Leases', async () => {
      const items = await leases('pod');
      return items.length === 3 ? items : undefined;
    });
    expect(found.map((l) => l.spec.holderIdentity?.replace(/_[0-9a-f]+$/, '')).sort()).toEqual(['edge-0', 'edge-1', 'edge-2']);
    expect(found.map((l) => l.metadata.annotations?.['media.fluxiot.io/http-address']).sort()).toEqual(
      ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((ip) => `${ip}:${ports.http}`),
    );
  });

  it('ffmpeg publishes to one pod, which claims the stream in the API server first', async () => {
    publishers.push(publishTestPattern(pod('edge-0').rtmpUrl('live', key), { seconds: 600 }));
    const claim = await eventually('the stream claim', () => claimOf(id));
    expect(claim.spec.holderIdentity).toMatch(/^edge-0_/);
    expect(claim.metadata.labels?.['media.fluxiot.io/fleet']).toBe(fleet);
    await eventually('the stream on its pod', async () => ((await ownerOf(pod('edge-0'), id)) === 'edge-0' ? true : undefined), 20_000);
  });

  it('ffprobe plays it from each of the other two pods over RTMP, HTTP-FLV and HLS', async () => {
    for (const name of ['edge-1', 'edge-2']) {
      const p = pod(name);
      for (const url of [p.rtmpUrl('live', key), p.httpUrl(`/live/${key}.flv`), p.httpUrl(`/live/${key}/index.m3u8`)]) {
        const tracks = await probe(url);
        expect(
          tracks.find((t) => t.codec_type === 'video'),
          url,
        ).toMatchObject({ codec_name: 'h264', width: 640, height: 360 });
        expect(
          tracks.find((t) => t.codec_type === 'audio'),
          url,
        ).toMatchObject({ codec_name: 'aac' });
      }
    }
  });

  it('every pod lists the same streams, each with the pod that owns it', async () => {
    const stable = (s: StreamView) => [s.stream_id, s.owner?.pod, s.start_time, s.video?.codec, s.video?.width, s.app, s.key];
    const lists = await Promise.all(['edge-0', 'edge-1', 'edge-2'].map(async (n) => (await streams(pod(n))).map(stable)));
    expect(lists[0]).toEqual([[id, 'edge-0', expect.any(String), 'h264', 640, 'live', key]]);
    expect(lists[1]).toEqual(lists[0]);
    expect(lists[2]).toEqual(lists[0]);
    const one = await fetch(pod('edge-2').httpUrl(`/api/v1/rtmp/streams/${encodeURIComponent(id)}`));
    expect(((await one.json()) as StreamView).owner).toEqual({ pod: 'edge-0' });
  });

  it('a transcoded stream plays adaptive from a pod that does not own it, asked as the stream starts: its renditions waited for on the owner, where its one transcode runs, and relayed', async () => {
    const abr = `abr${suffix}`;
    const renditionKeys = ABR_LADDER.map(({ name }) => `${abr}_${name}`);
    const publisher = publishTestPattern(pod('edge-0').rtmpUrl('abr', abr), { seconds: 120, size: '320x180' });
    publishers.push(publisher);
    const edge2 = pod('edge-2');
    // Asked as soon as edge-2 knows the source, while the owner's ffmpeg is (most likely) still starting:
    // edge-2 waits on edge-0 for each rendition, then relays it.
    await eventually('edge-2 lists the source', async () =>
      (await streams(edge2)).some((s) => s.stream_id === `rtmp/abr/${abr}`) ? true : undefined,
    );
    const masterUrl = edge2.httpUrl(`/abr/${abr}/master.m3u8`);
    const master = await fetch(masterUrl);
    expect(master.status).toBe(200);
    const text = await master.text();
    const variants = [...text.matchAll(/^#EXT-X-STREAM-INF:(.*)\n(.*)$/gm)].map(([, attributes = '', uri]) => ({
      uri,
      resolution: /RESOLUTION=(\d+x\d+)/.exec(attributes)?.[1],
      // Read from each variant's first segment: edge-2 waits for it before it answers.
      averageBandwidth: Number(/AVERAGE-BANDWIDTH=(\d+)/.exec(attributes)?.[1]),
    }));
    expect(
      variants.map(({ uri, resolution }) => [uri, resolution]),
      text,
    ).toEqual([
      ['index.m3u8', '320x180'],
      [`../${abr}_120p/index.m3u8`, '214x120'],
      [`../${abr}_90p/index.m3u8`, '160x90'],
    ]);
    expect(
      variants.every((v) => v.averageBandwidth > 10_000),
      text,
    ).toBe(true);
    // The owner's ffmpeg published the renditions back to it, which claimed them as it claims any publish.
    for (const renditionKey of renditionKeys) expect((await claimOf(`rtmp/abr/${renditionKey}`))?.spec.holderIdentity).toMatch(/^edge-0_/);
    const tracks = await probe(new URL(variants[2]!.uri!, masterUrl).href);
    expect(tracks.find((t) => t.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 160, height: 90 });
    expect(tracks.find((t) => t.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    // One transcode in the fleet, on the owner: a pod relaying the source or its renditions starts none.
    expect(await metric(pod('edge-0'), 'rtmpd_transcode_starts_total')).toBe(1);
    expect(await metric(edge2, 'rtmpd_transcode_starts_total')).toBe(0);
    expect(await metric(pod('edge-1'), 'rtmpd_transcode_starts_total')).toBe(0);
    // Gone before the steps that list every stream.
    publisher.child.kill('SIGINT');
    await publisher.exited;
    for (const streamKey of [abr, ...renditionKeys])
      await eventually(`the claim of ${streamKey} let go`, async () => ((await claimOf(`rtmp/abr/${streamKey}`)) ? undefined : true));
  });

  it('an RTMPS publisher is listed as rtmps by every pod, also from its claim alone while its pod does not answer', async () => {
    const tlsKey = `tls${suffix}`;
    const tlsId = `rtmp/live/${tlsKey}`;
    const edge1 = pod('edge-1');
    const publisher = publishTestPattern(`rtmps://${edge1.ip}:${ports.rtmps}/live/${tlsKey}`, { seconds: 120, size: '320x240' });
    publishers.push(publisher);
    const claimed = () => claimOf(tlsId);
    const claim = await eventually('the RTMPS stream’s claim', claimed);
    expect(claim.metadata.annotations?.['media.fluxiot.io/protocol']).toBe('rtmps');
    for (const name of ['edge-0', 'edge-1', 'edge-2']) {
      const view = await eventually(`the RTMPS stream in ${name}’s list`, async () =>
        (await streams(pod(name))).find((s) => s.stream_id === tlsId && s.video !== null),
      );
      expect(view.publisher.protocol, name).toBe('rtmps');
    }
    // Its owner stopped: the others list it from its claim (no tracks known), still as rtmps.
    edge1.child.kill('SIGSTOP');
    try {
      const fromClaim = await eventually(
        'the RTMPS stream listed from its claim',
        async () => (await streams(pod('edge-2'))).find((s) => s.stream_id === tlsId && s.video === null),
        10_000,
      );
      expect(fromClaim).toMatchObject({ owner: { pod: 'edge-1' }, publisher: { protocol: 'rtmps' } });
    } finally {
      edge1.child.kill('SIGCONT');
    }
    publisher.child.kill('SIGINT');
    await publisher.exited;
    await eventually('the RTMPS stream’s claim let go', async () => ((await claimed()) ? undefined : true));
  });

  it('the web console of a pod that does not own the stream shows it, its thumbnail and its owner', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(pod('edge-2').httpUrl('/'));
      const card = page.locator(`a.card[data-stream-id="${id}"]`);
      await expect.poll(() => card.locator('.thumb.loaded').count(), { timeout: 20_000 }).toBe(1);
      expect(await card.locator('.owner').innerText()).toBe('pod edge-0');
      await page.goto('about:blank');
      expect(browser.problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('a pod pulls a stream once, however many players it has there; the players count where they watch', async () => {
    const edge1 = pod('edge-1');
    const before = await metric(edge1, 'rtmpd_fleet_relays_started_total');
    const relaying = await metric(edge1, 'rtmpd_fleet_relays');
    const players = await Promise.all([1, 2, 3].map(() => player(edge1.rtmpUrl('live', key))));
    const flv = await Promise.all([1, 2].map(() => fetch(edge1.httpUrl(`/live/${key}.flv`))));
    await eventually('frames at every RTMP player', async () => (players.every((p) => p.media() > 25) ? true : undefined), 20_000);
    expect(flv.every((r) => r.status === 200 && r.headers.get('content-type') === 'video/x-flv')).toBe(true);
    expect(await metric(edge1, 'rtmpd_fleet_relays')).toBe(1);
    // A relay left over from the probes above may still be there: then none was started.
    expect((await metric(edge1, 'rtmpd_fleet_relays_started_total')) - before).toBe(relaying === 1 ? 0 : 1);
    const listed = await eventually('the five players in the fleet-wide list', async () => {
      const view = (await streams(pod('edge-2'))).find((s) => s.stream_id === id);
      return view?.players.rtmp === 3 && view.players.http_flv === 2 ? view : undefined;
    });
    // The HLS probes above may still count as HLS players (clients polling within the last 10 s).
    expect(listed.players.total).toBe(5 + listed.players.hls);
    for (const r of flv) await r.body?.cancel();
    for (const p of players) p.client.destroy();
  });

  it('HLS players count in the load a pod reports in its Lease (what the RtmpServer status sums), like RTMP and HTTP-FLV', async () => {
    const edge1 = pod('edge-1');
    const leasedPlayers = async () =>
      Number((await leases('pod')).find((l) => l.metadata.name === 'rtmpd-pod.edge-1')?.metadata.annotations?.['media.fluxiot.io/players']);
    // Four HLS clients (one address, four user agents) keep polling edge-1; no other player is left there
    // but perhaps the earlier ffprobe's HLS client, so without HLS in the load the Lease would report none.
    const poll = () =>
      Promise.all(
        [1, 2, 3, 4].map(async (n) => {
          const res = await fetch(edge1.httpUrl(`/live/${key}/index.m3u8`), { headers: { 'user-agent': `hls-player-${n}` } });
          expect(res.status).toBe(200);
          await res.text();
        }),
      );
    await poll();
    // The RTMP players of the step before may take a renewal to leave.
    await eventually('the HLS players in edge-1’s Lease', async () => {
      await poll();
      const n = await leasedPlayers();
      return n >= 4 && n <= 5 ? n : undefined;
    });
  });

  it('a snapshot asked of a pod that does not own the stream is a JPEG', async () => {
    const res = await fetch(pod('edge-2').httpUrl(`/api/v1/rtmp/streams/${encodeURIComponent(id)}/snapshot`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await res.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
  });

  it('the same key published on another pod is refused with NetStream.Publish.BadName', async () => {
    const client = await RtmpClient.connect(pod('edge-1').rtmpUrl('live', key));
    clients.push(client);
    await expect(client.publish()).rejects.toMatchObject({ code: 'NetStream.Publish.BadName' });
    client.destroy();
    const ffmpeg = publishTestPattern(pod('edge-2').rtmpUrl('live', key), { seconds: 5 });
    expect(await ffmpeg.exited).not.toBe(0);
    expect(ffmpeg.stderr()).toContain('already being published (on pod edge-0)');
  });

  it('the fleet-internal paths refuse requests without the fleet token', async () => {
    const res = await fetch(pod('edge-0').httpUrl('/fleet/v1/streams'));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-fleet"');
    const relay = await fetch(pod('edge-0').httpUrl(`/fleet/v1/relay/live/${key}.flv`), { headers: { authorization: 'Bearer wrong' } });
    expect(relay.status).toBe(401);
    expect(relay.headers.get('www-authenticate')).toBe('Bearer realm="rtmpd-fleet", error="invalid_token"');
  });

  it('SIGKILL of the owner: a republish on another pod is admitted when its claim expires, and plays from the third', async () => {
    const relayed = await player(pod('edge-2').rtmpUrl('live', key));
    // Killed right after it renewed its Lease, the worst case: the republish waits out nearly a whole Lease
    // duration, longer than the deadline a client has to ask to publish.
    const renewed = async () => (await leases('pod')).find((l) => l.metadata.name === 'rtmpd-pod.edge-0')?.spec.renewTime;
    const before = await renewed();
    await eventually('a renewal of edge-0’s Lease', async () => ((await renewed()) !== before ? true : undefined));
    const killedAt = Date.now();
    await pod('edge-0').kill();
    // The encoder reconnects at once, to another pod (as through the Service): its publish waits for the claim.
    publishers.push(publishTestPattern(pod('edge-1').rtmpUrl('live', key), { seconds: 600 }));
    const claimed = await eventually(
      'the claim to move to edge-1',
      async () => {
        const claim = await claimOf(id);
        return claim?.spec.holderIdentity?.startsWith('edge-1_') ? Date.now() : undefined;
      },
      30_000,
    );
    const failoverMs = claimed - killedAt;
    figures.failoverAfterSigkillMs = failoverMs;
    figures.leaseSeconds = 10;
    process.stderr.write(`fleet: after SIGKILL of the owner, the key was published again on another pod in ${failoverMs} ms\n`);
    expect(failoverMs).toBeLessThan(15_000);
    // The player that was relayed from the dead pod was ended cleanly.
    await eventually('the relayed player to be told', async () =>
      relayed.codes.includes('NetStream.Play.UnpublishNotify') ? true : undefined,
    );
    await eventually('edge-1 as the owner everywhere', async () =>
      (await ownerOf(pod('edge-2'), id)) === 'edge-1' && (await ownerOf(pod('edge-1'), id)) === 'edge-1' ? true : undefined,
    );
    const tracks = await probe(pod('edge-2').rtmpUrl('live', key));
    expect(tracks.find((t) => t.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 640 });
  });

  it('the killed pod comes back under its name (as a StatefulSet restarts it): a new process takes its Lease over', async () => {
    const old = (await leases('pod')).find((l) => l.metadata.name === 'rtmpd-pod.edge-0')?.spec.holderIdentity;
    await startPod('edge-0', '127.0.0.2');
    const now = await eventually('a new holder of edge-0’s Lease', async () => {
      const holder = (await leases('pod')).find((l) => l.metadata.name === 'rtmpd-pod.edge-0')?.spec.holderIdentity;
      return holder && holder !== old ? holder : undefined;
    });
    expect(now).toMatch(/^edge-0_/);
    expect((await streams(pod('edge-0'))).map((s) => s.owner?.pod)).toEqual(['edge-1']);
  });

  it('a recording written on one pod is listed, downloaded, played and deleted through another', async () => {
    // edge-0 recorded the stream until it was killed; edge-1 records it now; edge-2 holds none of it.
    const through = pod('edge-2');
    const api = (path: string) => through.httpUrl(`/api/v1/rtmp/recordings${path}`);
    const listed = async (p: FleetPod): Promise<FleetRecordingList> =>
      (await (await fetch(p.httpUrl(`/api/v1/rtmp/recordings?stream_id=${encodeURIComponent(id)}`))).json()) as FleetRecordingList;
    const list = await eventually('the recordings of both pods', async () => {
      const got = await listed(through);
      return got.recordings.some((r) => r.pod === 'edge-0') && got.recordings.some((r) => r.pod === 'edge-1' && r.recording)
        ? got
        : undefined;
    });
    expect(list.unreachable_pods).toEqual([]);
    expect((await listed(pod('edge-0'))).recordings.map((r) => r.id)).toEqual(list.recordings.map((r) => r.id));
    const held = list.recordings.find((r) => r.pod === 'edge-0')!;
    expect(held).toMatchObject({
      stream_id: id,
      format: 'fmp4',
      recording: false,
      url: `/api/v1/rtmp/recordings/${encodeURIComponent(held.id)}`,
    });
    expect(held.id).toMatch(new RegExp(`^edge-0/live/${key}/[^/]+\\.mp4$`));

    const part = await fetch(through.httpUrl(held.url), { headers: { range: 'bytes=4-7' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 4-7/${held.size_bytes}`);
    expect(Buffer.from(await part.arrayBuffer()).toString('latin1')).toBe('ftyp');
    // The VOD playlist on edge-2 addresses the files of edge-0 and edge-1, both served through it.
    const vod = await (await fetch(api(`/playlist.m3u8?stream_id=${encodeURIComponent(id)}`))).text();
    expect(vod).toContain(encodeURIComponent(held.id));
    expect(vod).toContain(encodeURIComponent('edge-1/'));
    const tracks = await probe(api(`/playlist.m3u8?stream_id=${encodeURIComponent(id)}`));
    expect(tracks.find((t) => t.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 640 });

    // A pod that does not answer is named, and the others' recordings are still listed.
    pod('edge-1').child.kill('SIGSTOP');
    try {
      const partial = await listed(through);
      expect(partial.unreachable_pods).toEqual(['edge-1']);
      expect(partial.recordings.map((r) => r.id)).toEqual(list.recordings.filter((r) => r.pod !== 'edge-1').map((r) => r.id));
    } finally {
      pod('edge-1').child.kill('SIGCONT');
    }

    const writing = list.recordings.find((r) => r.pod === 'edge-1' && r.recording)!;
    const auth = { authorization: `Bearer ${apiToken}` };
    expect((await fetch(through.httpUrl(writing.url), { method: 'DELETE', headers: auth })).status).toBe(409);
    expect((await fetch(through.httpUrl(held.url), { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(through.httpUrl(held.url), { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(through.httpUrl(held.url))).status).toBe(404);
    expect((await listed(pod('edge-1'))).recordings.map((r) => r.id)).not.toContain(held.id);
  });

  it('SIGTERM drains a pod: unready at once, publishers asked to reconnect, claims let go, players served to the end', async () => {
    const drained = pod('edge-1');
    // A publisher that honours Enhanced RTMP reconnect requests (capsEx Reconnect), on the pod that drains.
    const other = `drain${suffix}`;
    const enhanced = await RtmpClient.connect(drained.rtmpUrl('live', other), { connectProperties: { capsEx: 1 } });
    clients.push(enhanced);
    const heard: string[] = [];
    enhanced.on('status', (info) => heard.push(String(info.code)));
    await enhanced.publish();
    // A stream owned by another pod, watched on the draining pod: it keeps the pod serving through its grace period.
    const third = `third${suffix}`;
    publishers.push(publishTestPattern(pod('edge-2').rtmpUrl('live', third), { seconds: 600 }));
    await eventually('the third stream', async () => ((await ownerOf(pod('edge-2'), `rtmp/live/${third}`)) ? true : undefined), 20_000);
    const watcher = await player(drained.rtmpUrl('live', third));
    // And a player elsewhere of a stream the draining pod owns.
    const relayed = await player(pod('edge-2').rtmpUrl('live', key));

    const stoppedAt = Date.now();
    const exited = drained.stop();
    await eventually(
      'the draining pod to answer /ready with 503',
      async () => {
        const res = await fetch(drained.httpUrl('/ready'));
        return res.status === 503 ? true : undefined;
      },
      5000,
    );
    expect((await fetch(drained.httpUrl('/health'))).status).toBe(200);
    await eventually(
      'the reconnect request',
      async () => (heard.includes('NetConnection.Connect.ReconnectRequest') ? true : undefined),
      5000,
    );
    // The draining pod let its claim go before it asked, so the publish on another pod is admitted at once,
    // not after the claim's Lease runs out.
    expect(await claimOf(`rtmp/live/${other}`)).toBeUndefined();
    const askedAt = Date.now();
    const moved = await RtmpClient.connect(pod('edge-2').rtmpUrl('live', other));
    clients.push(moved);
    await moved.publish();
    figures.republishAfterReconnectRequestMs = Date.now() - askedAt;
    enhanced.close();
    // The relayed player of the drained pod's stream is ended cleanly, so it reconnects.
    await eventually('the relayed player to hear the stream end', async () =>
      relayed.codes.includes('NetStream.Play.UnpublishNotify') ? true : undefined,
    );
    // The player of another pod's stream is still served while the pod drains.
    const framesBefore = watcher.media();
    await new Promise((r) => setTimeout(r, 2000));
    expect(watcher.media()).toBeGreaterThan(framesBefore);
    expect(await exited).toBe(0);
    figures.drainMs = Date.now() - stoppedAt;
    expect(watcher.codes).toContain('NetStream.Play.Stop');
    expect((await leases('pod')).map((l) => l.metadata.name)).not.toContain('rtmpd-pod.edge-1');
    const claims = await leases('stream');
    expect(claims.map((l) => l.spec.holderIdentity).filter((h) => h?.startsWith('edge-1_'))).toEqual([]);
  });

  it('API writes: one Lease renewal per pod per third of the lease, nothing per stream while it is live', async () => {
    const p = pod('edge-2');
    const w0 = await metric(p, 'rtmpd_fleet_lease_writes_total');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 20_000));
    const w1 = await metric(p, 'rtmpd_fleet_lease_writes_total');
    const perSecond = ((w1 - w0) * 1000) / (Date.now() - t0);
    figures.leaseWritesPerPodPerSecond = Math.round(perSecond * 1000) / 1000;
    figures.liveStreamsOnThatPod = (await streams(p)).filter((s) => s.owner?.pod === 'edge-2').length;
    process.stderr.write(
      `fleet: ${perSecond.toFixed(3)} API writes/s from a pod owning ${String(figures.liveStreamsOnThatPod)} live streams\n`,
    );
    // 10 s leases renewed every 3.3 s: 0.3 writes/s, whatever the number of streams.
    expect(perSecond).toBeLessThan(0.5);
  });
});
