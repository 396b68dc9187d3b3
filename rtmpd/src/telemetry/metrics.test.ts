import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Histogram, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../hub/hub.ts';
import type { PublisherInfo, Stream } from '../hub/stream.ts';
import { SUBSCRIBER_KINDS, type SubscriberKind } from '../hub/subscriber.ts';
import { FakeSubscriber } from '../../test/support/fake-subscriber.ts';
import { createListenerStats, createRtmpStats } from '../rtmp/server/stats.ts';
import { RELAY_LATENCY_BUCKETS, RtmpdMetrics, type RtmpCounters, type RtmpListenerCounters } from './metrics.ts';

const avcc = readFileSync(new URL('../codec/testdata/h264_high_320x240.avcc', import.meta.url));
const asc = readFileSync(new URL('../codec/testdata/aac_lc_44100_2.asc', import.meta.url));
const videoHeader = Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), avcc]);
const nal = (type: number, size: number) =>
  Buffer.concat([Buffer.from([0, 0, (size >> 8) & 0xff, size & 0xff, type]), Buffer.alloc(size - 1, 0xab)]);
const keyframe = Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), nal(0x65, 2000)]);
const interframe = Buffer.concat([Buffer.from([0x27, 1, 0, 0, 0]), nal(0x41, 500)]);
const audioHeader = Buffer.concat([Buffer.from([0xaf, 0]), asc]);
const audioFrame = Buffer.concat([Buffer.from([0xaf, 1]), Buffer.alloc(200, 0x21)]);

const hubs: StreamHub[] = [];
const all: RtmpdMetrics[] = [];
afterEach(() => {
  hubs.splice(0).forEach((hub) => hub.closeAll());
  all.splice(0).forEach((m) => m.close());
});

function setup(maxStreams: number, runtime = false): { hub: StreamHub; metrics: RtmpdMetrics } {
  const metrics = new RtmpdMetrics({ maxStreams, runtime });
  const hub = new StreamHub({
    gopCacheMaxBytes: 1 << 20,
    playerMaxBufferBytes: 64 * 1024,
    playerStallTimeoutMs: 60_000,
    onRelayed: metrics.observeRelay,
  });
  metrics.watchHub(hub);
  hubs.push(hub);
  all.push(metrics);
  return { hub, metrics };
}

const publisher = (): PublisherInfo => ({ protocol: 'rtmp', remoteAddress: '127.0.0.1', close: () => undefined });

/** A player that never reads, or a recorder. */
const player = (kind: SubscriberKind = 'rtmp') => new FakeSubscriber(kind, { neverDrains: kind !== 'recorder' });

function feed(stream: Stream, gops: number): void {
  const now = performance.now();
  stream.pushVideo(0, videoHeader, now);
  stream.pushAudio(0, audioHeader, now);
  for (let g = 0; g < gops; g++) {
    stream.pushVideo(g * 1000, keyframe, performance.now());
    for (let i = 1; i < 5; i++) {
      stream.pushVideo(g * 1000 + i * 40, interframe, performance.now());
      stream.pushAudio(g * 1000 + i * 40, audioFrame, performance.now());
    }
  }
}

/** Parses the text exposition into `name{labels}` → value. */
function parse(text: Buffer | string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.toString().split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('RtmpdMetrics', () => {
  it('gives the first maxStreams streams their own series and sums the rest under _overflow, never decreasing', async () => {
    const { hub, metrics } = setup(2);
    const streams = ['a', 'b', 'c', 'd'].map((key) => hub.publish('live', key, publisher()));
    for (const s of streams) s.subscribe(player(), performance.now());
    streams[0]!.subscribe(player('http-flv'), performance.now());
    streams[0]!.subscribe(player('recorder'), performance.now());
    for (const s of streams) feed(s, 1);
    const perStream = streams[0]!.stats.bytesIn;

    let m = parse(await metrics.scrape());
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="a",source="publisher"}')).toBe(perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="b",source="publisher"}')).toBe(perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="c",source="publisher"}')).toBeUndefined();
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="publisher"}')).toBe(2 * perStream);
    expect(m.get('rtmpd_streams_overflow')).toBe(2);
    expect(m.get('rtmpd_publishers{protocol="rtmp"}')).toBe(4);
    expect(m.get('rtmpd_players{protocol="rtmp"}')).toBe(4);
    expect(m.get('rtmpd_players{protocol="http-flv"}')).toBe(1);
    expect(m.get('rtmpd_recordings_active')).toBe(1);
    expect(m.get('rtmpd_stream_players{app="live",key="a",source="publisher"}')).toBe(2);
    expect(m.get('rtmpd_stream_info{app="live",key="a",source="publisher",video_codec="h264",audio_codec="aac"}')).toBe(1);
    expect(m.get('rtmpd_stream_video_frames_total{app="live",key="a",source="publisher"}')).toBe(5);
    expect(m.get('rtmpd_stream_keyframes_total{app="live",key="a",source="publisher"}')).toBe(1);
    expect(m.get('rtmpd_stream_audio_frames_total{app="live",key="a",source="publisher"}')).toBe(4);
    expect(m.get('rtmpd_gop_cache_bytes')).toBe(streams.reduce((sum, s) => sum + s.gopCacheBytes, 0));
    expect(m.get('rtmpd_connections{protocol="http-flv",state="playing"}')).toBe(1);

    // An overflow stream ends: its bytes stay in _overflow; a new stream stays in overflow (b still holds a slot).
    hub.unpublish(streams[2]!);
    hub.unpublish(streams[0]!);
    const e = hub.publish('live', 'e', publisher());
    m = parse(await metrics.scrape());
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="publisher"}')).toBe(2 * perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="a",source="publisher"}')).toBeUndefined();
    // a's slot was freed, so e took it.
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="e",source="publisher"}')).toBe(0);
    expect(m.get('rtmpd_streams_overflow')).toBe(1);
    expect(e.id).toBe('rtmp/live/e');
  });

  it("labels a relayed stream's series source=relay, its own and under _overflow, so a fleet's ingest is the publisher series", async () => {
    const { hub, metrics } = setup(1);
    const owned = hub.publish('live', 'owned', publisher());
    const relayed = [
      hub.publish('live', 'r1', { ...publisher(), protocol: 'relay' }),
      hub.publish('live', 'r2', { ...publisher(), protocol: 'relay' }),
    ];
    const published = hub.publish('live', 'p2', publisher());
    for (const s of [owned, ...relayed, published]) feed(s, 1);
    const perStream = owned.stats.bytesIn;

    let m = parse(await metrics.scrape());
    expect(m.get('rtmpd_stream_received_bytes_total{app="live",key="owned",source="publisher"}')).toBe(perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="publisher"}')).toBe(perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="relay"}')).toBe(2 * perStream);
    expect(m.get('rtmpd_stream_keyframes_total{app="_overflow",key="_overflow",source="relay"}')).toBe(2);
    expect(m.get('rtmpd_streams_overflow')).toBe(3);

    // A relay that ends keeps its counts in the relay _overflow, not the publisher one.
    hub.unpublish(relayed[0]!);
    m = parse(await metrics.scrape());
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="relay"}')).toBe(2 * perStream);
    expect(m.get('rtmpd_stream_received_bytes_total{app="_overflow",key="_overflow",source="publisher"}')).toBe(perStream);
    expect(m.get('rtmpd_streams_overflow')).toBe(2);

    // Relayed in with a slot of its own.
    const own = setup(10);
    own.hub.publish('live', 'cam', { ...publisher(), protocol: 'relay' });
    const text = (await own.metrics.scrape()).toString();
    expect(text).toContain('\nrtmpd_stream_info{app="live",key="cam",source="relay",video_codec="none",audio_codec="none"} 1\n');
    expect(text).toContain('\nrtmpd_stream_received_bytes_total{app="live",key="cam",source="relay"} 0\n');
    expect(text).not.toContain('source="publisher"');
  });

  it('splits sent bytes by subscriber kind, summing to what the stream handed out, and keeps an ended overflow stream in its kinds', async () => {
    const { hub, metrics } = setup(1);
    const streams = ['a', 'b'].map((key) => hub.publish('live', key, publisher()));
    const now = performance.now();
    for (const s of streams) {
      for (const kind of ['rtmp', 'http-flv', 'recorder', 'relay'] as const) s.subscribe(player(kind), now);
      s.subscribe(player('recorder'), now);
      feed(s, 2);
    }
    const [a, b] = streams as [Stream, Stream];
    const kindBytes = (s: Stream, kind: SubscriberKind) => s.bytesOutByKind[SUBSCRIBER_KINDS.indexOf(kind)]!;
    // Two recorders: twice what the player got (2 GOPs stay under its queue bound, so it skipped nothing).
    expect(kindBytes(a, 'recorder')).toBe(2 * kindBytes(a, 'rtmp'));
    expect(a.bytesOut).toBe(SUBSCRIBER_KINDS.reduce((sum, kind) => sum + kindBytes(a, kind), 0));

    let m = parse(await metrics.scrape());
    const sent = (app: string, key: string, kind: string) =>
      m.get(`rtmpd_stream_sent_bytes_total{app="${app}",key="${key}",source="publisher",subscriber="${kind}"}`);
    for (const kind of ['rtmp', 'http-flv', 'recorder', 'relay'] as const) {
      expect(sent('live', 'a', kind), kind).toBe(kindBytes(a, kind));
      expect(sent('_overflow', '_overflow', kind), kind).toBe(kindBytes(b, kind));
    }
    // Kinds the stream never sent to have no series.
    expect(sent('live', 'a', 'rtmps')).toBeUndefined();
    expect(sent('live', 'a', 'hls')).toBeUndefined();

    hub.unpublish(b);
    m = parse(await metrics.scrape());
    for (const kind of ['rtmp', 'http-flv', 'recorder', 'relay'] as const)
      expect(sent('_overflow', '_overflow', kind), kind).toBe(kindBytes(b, kind));
  });

  it('counts what HLS players downloaded as subscriber="hls-player", apart from the hls segmenter, and keeps an ended overflow stream\'s', async () => {
    const { hub, metrics } = setup(1);
    const [a, b] = ['a', 'b'].map((key) => hub.publish('live', key, publisher())) as [Stream, Stream];
    for (const s of [a, b]) {
      s.subscribe(player('hls'), performance.now());
      feed(s, 1);
    }
    let m = parse(await metrics.scrape());
    const sent = (app: string, key: string, kind: string) =>
      m.get(`rtmpd_stream_sent_bytes_total{app="${app}",key="${key}",source="publisher",subscriber="${kind}"}`);
    // No series before the first byte an HLS player got.
    expect(sent('live', 'a', 'hls-player')).toBeUndefined();

    a.stats.hlsPlayerBytes = 12_345;
    b.stats.hlsPlayerBytes = 678;
    m = parse(await metrics.scrape());
    expect(sent('live', 'a', 'hls-player')).toBe(12_345);
    expect(sent('_overflow', '_overflow', 'hls-player')).toBe(678);
    expect(sent('live', 'a', 'hls')).toBe(a.bytesOutByKind[SUBSCRIBER_KINDS.indexOf('hls')]);
    expect(sent('live', 'a', 'hls')).toBeGreaterThan(0);

    hub.unpublish(b);
    const c = hub.publish('live', 'c', publisher());
    c.stats.hlsPlayerBytes = 1000;
    m = parse(await metrics.scrape());
    expect(sent('_overflow', '_overflow', 'hls-player')).toBe(1678);
  });

  it('writes every value as String() would, past the size of its first buffer, and the same text scrape after scrape', async () => {
    const { hub, metrics } = setup(2000);
    const many = Array.from({ length: 1500 }, (_, i) => hub.publish('live', `s${i}`, publisher()));
    many[0]!.stats.bytesIn = Number.MAX_SAFE_INTEGER;
    many[1]!.stats.bytesIn = 2 ** 60; // past exact integers: String()'s form
    const text = (await metrics.scrape()).toString();
    expect(text).toContain(`\nrtmpd_stream_received_bytes_total{app="live",key="s0",source="publisher"} ${Number.MAX_SAFE_INTEGER}\n`);
    expect(text).toContain(`\nrtmpd_stream_received_bytes_total{app="live",key="s1",source="publisher"} ${String(2 ** 60)}\n`);
    const m = parse(text);
    for (let i = 2; i < many.length; i++)
      expect(m.get(`rtmpd_stream_received_bytes_total{app="live",key="s${i}",source="publisher"}`)).toBe(0);
    expect(Buffer.byteLength(text)).toBeGreaterThan(64 * 1024);
    // A second scrape writes the same text again into the kept buffer.
    expect((await metrics.scrape()).toString().replace(/uptime_seconds(\{[^}]*\})? \S+/g, '')).toBe(
      text.replace(/uptime_seconds(\{[^}]*\})? \S+/g, ''),
    );
  });

  it('observes every relayed packet in the latency histogram and counts drops for a slow player', async () => {
    const { hub, metrics } = setup(10);
    const stream = hub.publish('live', 'cam', publisher());
    const slow = player();
    stream.subscribe(slow, performance.now());
    feed(stream, 40); // 40 GOPs of ~4.7 kB: the 64 kB queue bound is passed
    const m = parse(await metrics.scrape());
    const count = m.get('rtmpd_relay_latency_seconds_count{source="publisher"}')!;
    expect(count).toBeGreaterThan(300);
    expect(m.get('rtmpd_relay_latency_seconds_bucket{le="+Inf",source="publisher"}')).toBe(count);
    expect(m.get('rtmpd_relay_latency_seconds_bucket{le="5",source="publisher"}')).toBe(count);
    expect([...m.keys()].filter((k) => k.includes('source="relay"') && k.startsWith('rtmpd_relay_latency'))).toEqual([]);
    expect(m.get('rtmpd_stream_dropped_frames_total{app="live",key="cam",source="publisher"}')).toBeGreaterThan(0);
    expect(m.get('rtmpd_stream_dropped_frames_total{app="live",key="cam",source="publisher"}')).toBe(stream.stats.framesDropped);
  });

  it("keeps a relayed stream's latency apart (source=relay), and counts the frames a slow relay to another pod missed as the fleet's, not as a slow player's", async () => {
    const { hub, metrics } = setup(10);
    metrics.watchFleet(() => ({
      pods: 2,
      claims: 1,
      relays: 1,
      relaysStarted: 1,
      relayFailures: { tag_too_large: 2, bad_flv: 0, media: 1 },
      leaseWrites: 0,
      abandonedLeasesDeleted: { pod: 1, claim: 3 },
    }));
    const owned = hub.publish('live', 'owned', publisher());
    owned.subscribe(player('relay'), performance.now()); // another pod pulling it, and not reading
    feed(owned, 40);
    const relayed = hub.publish('live', 'relayed', { ...publisher(), protocol: 'relay' });
    relayed.subscribe(new FakeSubscriber('rtmp'), performance.now());
    feed(relayed, 2);
    const packets = (gops: number) => 2 + 9 * gops; // feed(): two headers, then a keyframe and 4 video and 4 audio frames a GOP

    const m = parse(await metrics.scrape());
    expect(m.get('rtmpd_relay_latency_seconds_count{source="publisher"}')).toBe(packets(40));
    expect(m.get('rtmpd_relay_latency_seconds_count{source="relay"}')).toBe(packets(2));
    expect(hub.relayFramesDropped).toBeGreaterThan(0);
    expect(m.get('rtmpd_fleet_relay_dropped_frames_total')).toBe(hub.relayFramesDropped);
    expect(m.get('rtmpd_fleet_abandoned_leases_deleted_total{kind="pod"}')).toBe(1);
    expect(m.get('rtmpd_fleet_abandoned_leases_deleted_total{kind="claim"}')).toBe(3);
    expect(m.get('rtmpd_fleet_relay_failures_total{reason="tag_too_large"}')).toBe(2);
    expect(m.get('rtmpd_fleet_relay_failures_total{reason="media"}')).toBe(1);
    expect(m.get('rtmpd_stream_dropped_frames_total{app="live",key="owned",source="publisher"}')).toBe(0);
    // The hub's sweep counts a stalled relay apart (hub.test.ts); the scrape reads that count.
    hub.relaysStalledClosed = 3;
    expect(parse(await metrics.scrape()).get('rtmpd_fleet_relays_stalled_closed_total')).toBe(3);
  });

  it('reads RTMP, recording and snapshot counters when scraped, each RTMP listener under its protocol', async () => {
    const { metrics } = setup(10);
    const listener = (counts: Partial<RtmpListenerCounters>): RtmpListenerCounters => ({
      connections: { handshake: 0, connecting: 0, connected: 0, admitting: 0, waiting: 0, publishing: 0, playing: 0 },
      connectionsAccepted: 0,
      connectionsRefused: {
        max_connections: 0,
        per_address: 0,
        bad_proxy_header: 0,
        proxy_header_timeout: 0,
        idle_no_header: 0,
        publish_rate: 0,
      },
      handshakeFailures: {},
      protocolErrors: {},
      commandErrors: {},
      bytesIn: 0,
      bytesOut: 0,
      messagesIn: 0,
      messagesOut: 0,
      ...counts,
    });
    const rtmp: RtmpCounters = {
      protocols: {
        rtmp: listener({
          connections: { handshake: 1, connecting: 0, connected: 0, admitting: 1, waiting: 0, publishing: 2, playing: 0 },
          connectionsAccepted: 7,
          connectionsRefused: {
            max_connections: 1,
            per_address: 0,
            bad_proxy_header: 0,
            proxy_header_timeout: 0,
            idle_no_header: 0,
            publish_rate: 0,
          },
          handshakeFailures: { bad_version: 3 },
          commandErrors: { play: 2 },
          bytesIn: 1000,
          bytesOut: 2000,
          messagesIn: 10,
          messagesOut: 20,
        }),
        rtmps: listener({
          connections: { handshake: 0, connecting: 0, connected: 0, admitting: 0, waiting: 0, publishing: 1, playing: 4 },
          connectionsAccepted: 5,
          connectionsRefused: {
            max_connections: 0,
            per_address: 2,
            bad_proxy_header: 0,
            proxy_header_timeout: 0,
            idle_no_header: 0,
            publish_rate: 0,
          },
          bytesOut: 3000,
        }),
      },
      inbound: { held: 4096 },
    };
    const recording = { filesOpened: 1, bytesWritten: 5, errors: 0, diskFull: 0, dropped: 0 };
    metrics.watchRtmp(rtmp);
    metrics.watchRecorder(recording);
    const snapshots = { cacheHits: 4, busyRefusals: 1, pictureRefusals: 2, fileErrors: 0 };
    metrics.watchSnapshots(snapshots);
    metrics.observeSnapshotDecode(0.2, true);
    recording.bytesWritten = 9;
    const m = parse(await metrics.scrape());
    expect(m.get('rtmpd_connections{protocol="rtmp",state="publishing"}')).toBe(2);
    expect(m.get('rtmpd_connections{protocol="rtmp",state="playing"}')).toBe(0);
    expect(m.get('rtmpd_connections{protocol="rtmp",state="handshake"}')).toBe(1);
    expect(m.get('rtmpd_connections{protocol="rtmp",state="admitting"}')).toBe(1);
    expect(m.get('rtmpd_connections{protocol="rtmps",state="publishing"}')).toBe(1);
    expect(m.get('rtmpd_connections{protocol="rtmps",state="playing"}')).toBe(4);
    expect(m.get('rtmpd_connections_accepted_total{protocol="rtmp"}')).toBe(7);
    expect(m.get('rtmpd_connections_accepted_total{protocol="rtmps"}')).toBe(5);
    expect(m.get('rtmpd_connections_refused_total{protocol="rtmp",reason="max_connections"}')).toBe(1);
    expect(m.get('rtmpd_connections_refused_total{protocol="rtmps",reason="per_address"}')).toBe(2);
    expect(m.get('rtmpd_handshake_failures_total{protocol="rtmp",reason="bad_version"}')).toBe(3);
    expect(m.get('rtmpd_handshake_failures_total{protocol="rtmps",reason="handshake_timeout"}')).toBe(0);
    expect(m.get('rtmpd_command_errors_total{protocol="rtmp",command="play"}')).toBe(2);
    expect(m.get('rtmpd_command_errors_total{protocol="rtmps",command="play"}')).toBe(0);
    expect(m.get('rtmpd_rtmp_sent_bytes_total{protocol="rtmp"}')).toBe(2000);
    expect(m.get('rtmpd_rtmp_sent_bytes_total{protocol="rtmps"}')).toBe(3000);
    expect(m.get('rtmpd_rtmp_received_messages_total{protocol="rtmp"}')).toBe(10);
    expect(m.get('rtmpd_rtmp_partial_message_bytes')).toBe(4096);
    expect(m.get('rtmpd_protocol_errors_total{protocol="rtmp",reason="partial_budget_exceeded"}')).toBe(0);
    expect(m.get('rtmpd_recording_written_bytes_total')).toBe(9);
    expect(m.get('rtmpd_snapshots_total{outcome="ok"}')).toBe(1);
    expect(m.get('rtmpd_snapshots_total{outcome="error"}')).toBe(0);
    expect(m.get('rtmpd_snapshots_total{outcome="busy"}')).toBe(1);
    expect(m.get('rtmpd_snapshots_total{outcome="picture_too_large"}')).toBe(2);
    expect(m.get('rtmpd_snapshots_total{outcome="cached"}')).toBe(4);
    expect(m.get('rtmpd_snapshot_file_errors_total')).toBe(0);
    expect(m.get('rtmpd_snapshot_duration_seconds_bucket{le="0.25"}')).toBe(1);
    expect(m.get('rtmpd_snapshot_duration_seconds_count')).toBe(1);
  });

  it('exports HTTP connections accepted and refused by reason, at 0 before the listener is watched', async () => {
    const { metrics } = setup(10);
    let m = parse(await metrics.scrape());
    expect(m.get('rtmpd_http_connections_accepted_total')).toBe(0);
    expect(m.get('rtmpd_http_connections_refused_total{reason="max_connections"}')).toBe(0);
    expect(m.get('rtmpd_http_connections_refused_total{reason="per_address"}')).toBe(0);
    expect(m.get('rtmpd_http_connections_refused_total{reason="bad_proxy_header"}')).toBe(0);
    metrics.watchHttp({
      connectionsAccepted: 7,
      connectionsRefused: { max_connections: 1, per_address: 3, bad_proxy_header: 4, proxy_header_timeout: 5, idle_no_header: 6 },
      clientErrors: {},
    });
    m = parse(await metrics.scrape());
    expect(m.get('rtmpd_http_connections_accepted_total')).toBe(7);
    expect(m.get('rtmpd_http_connections_refused_total{reason="max_connections"}')).toBe(1);
    expect(m.get('rtmpd_http_connections_refused_total{reason="per_address"}')).toBe(3);
    expect(m.get('rtmpd_http_connections_refused_total{reason="bad_proxy_header"}')).toBe(4);
    expect(m.get('rtmpd_http_connections_refused_total{reason="proxy_header_timeout"}')).toBe(5);
    expect(m.get('rtmpd_http_connections_refused_total{reason="idle_no_header"}')).toBe(6);
  });

  it('counts publishers and RTMP players under the listener they came in on, relayed streams under neither', async () => {
    const { hub, metrics } = setup(10);
    const stats = createRtmpStats();
    stats.protocols.rtmps = createListenerStats();
    metrics.watchRtmp(stats);
    const plain = hub.publish('live', 'plain', publisher());
    const secure = hub.publish('live', 'secure', { ...publisher(), protocol: 'rtmps' });
    hub.publish('live', 'relayed', { ...publisher(), protocol: 'relay' });
    const now = performance.now();
    for (const kind of ['rtmp', 'rtmps', 'http-flv'] as const) secure.subscribe(player(kind), now);
    plain.subscribe(player('rtmp'), now);
    const m = parse(await metrics.scrape());
    expect(m.get('rtmpd_publishers{protocol="rtmp"}')).toBe(1);
    expect(m.get('rtmpd_publishers{protocol="rtmps"}')).toBe(1);
    expect(m.get('rtmpd_players{protocol="rtmp"}')).toBe(2);
    expect(m.get('rtmpd_players{protocol="rtmps"}')).toBe(1);
    expect(m.get('rtmpd_players{protocol="http-flv"}')).toBe(1);
  });

  it('exports RTMP series for plain RTMP only while no RTMPS listener listens', async () => {
    const { metrics } = setup(10);
    let text = (await metrics.scrape()).toString();
    expect(text).toContain('\nrtmpd_connections_accepted_total{protocol="rtmp"} 0\n');
    expect(text).not.toContain('protocol="rtmps"');
    metrics.watchRtmp(createRtmpStats());
    text = (await metrics.scrape()).toString();
    expect(text).toContain('\nrtmpd_connections{protocol="rtmp",state="playing"} 0\n');
    expect(text).not.toContain('protocol="rtmps"');
  });

  it('passes promtool check metrics, runtime metrics included', async () => {
    const { hub, metrics } = setup(1, true);
    for (const key of ['a', 'b']) {
      const s = hub.publish('live', key, publisher());
      s.subscribe(player(), performance.now());
      feed(s, 2);
    }
    const text = (await metrics.scrape()).toString();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'rtmpd_event_loop_active_seconds_total',
    ]) {
      expect(text, name).toContain(`\n${name}`);
    }
    expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.error, 'promtool is installed by hack/setup.sh (Debian package prometheus)').toBeUndefined();
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
  });

  // What a scrape costs is measured by make bench (rtmpd's load scenarios time GET /metrics);
  // here, that 500 streams with every kind of subscriber all get their series.
  it('scrapes 500 live streams, each with its series', async () => {
    const { hub, metrics } = setup(500, true);
    for (let i = 0; i < 500; i++) {
      const s = hub.publish('live', `stream${i}`, publisher());
      s.subscribe(player(), performance.now());
      s.subscribe(player('http-flv'), performance.now());
      s.subscribe(player('recorder'), performance.now());
      feed(s, 1);
    }
    const scraped = parse(await metrics.scrape());
    expect(scraped.get('rtmpd_stream_info{app="live",key="stream0",source="publisher",video_codec="h264",audio_codec="aac"}')).toBe(1);
    expect(scraped.get('rtmpd_stream_info{app="live",key="stream499",source="publisher",video_codec="h264",audio_codec="aac"}')).toBe(1);
    expect(scraped.get('rtmpd_streams_overflow')).toBe(0);
  });

  // The relay-latency histogram is a plain array bumped per packet instead of
  // prom-client's Histogram; it must expose exactly what prom-client would.
  it('exposes the relay latency exactly as a prom-client Histogram would', async () => {
    const metrics = new RtmpdMetrics({ maxStreams: 1, runtime: false });
    const registry = new Registry();
    const reference = new Histogram({
      name: 'rtmpd_relay_latency_seconds',
      help: 'x',
      buckets: RELAY_LATENCY_BUCKETS,
      labelNames: ['source'],
      registers: [registry],
    });
    const latenciesMs = [0, 0.4, 1, 1.5, 7, 50, 120, 999, 2000, 5000, 7000, ...Array.from({ length: 200 }, (_, i) => (i * 37) % 900)];
    for (const [i, ms] of latenciesMs.entries()) {
      const source = i % 3 === 0 ? 'relay' : 'publisher';
      metrics.observeRelay(source, ms);
      reference.observe({ source }, ms / 1000);
    }
    const ours = parse(await metrics.scrape());
    const theirs = parse(await registry.metrics());
    const series = [...theirs.keys()].filter((k) => k.startsWith('rtmpd_relay_latency_seconds'));
    expect(series.length).toBe(2 * (RELAY_LATENCY_BUCKETS.length + 3));
    for (const key of series) expect([key, ours.get(key)]).toEqual([key, theirs.get(key)]);
  });
});
