// CRD rules the operator tests do not reach, on the real API server: only the
// installed CRD answers (server-side dry runs where nothing need be stored), so no operator runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import { installCrd, rtmpServer, suffix } from './harness.ts';

const ns = `rtmp-crd-${suffix()}`;
const lowLatencyInTs = 'lowLatency and variant mpegts cannot both be set, in hls or in one of hls.rules';

beforeAll(async () => {
  await installCrd();
  await kubectl(['create', 'namespace', ns]);
}, 120_000);

afterAll(() => kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true }), 60_000);

describe('the RtmpServer CRD', () => {
  it.each([
    [
      'one port for RTMPS and HTTPS',
      { tls: { secretName: 'edge-tls', https: true, rtmpsPort: 8443, httpsPort: 8443 } },
      'tls.rtmpsPort and tls.httpsPort must differ',
    ],
    ['a trusted proxy that is no address', { rtmpd: { httpForwardedFrom: ['proxy.example'] } }, 'spec.rtmpd.httpForwardedFrom[0]'],
    [
      "the health port's heartbeat threshold with liveness on the HTTP port",
      { probes: { liveness: { port: 'http' } }, rtmpd: { healthMaxHeartbeatAgeSeconds: 60 } },
      "spec.rtmpd.healthMaxHeartbeatAgeSeconds is the threshold of the health port's thread",
    ],
    ['Low-Latency HLS in MPEG-TS', { hls: { lowLatency: true, variant: 'mpegts' } }, lowLatencyInTs],
    [
      'Low-Latency HLS in MPEG-TS in one rule',
      { hls: { rules: [{ app: 'studio', lowLatency: true, variant: 'mpegts' }] } },
      lowLatencyInTs,
    ],
  ])('refuses %s', async (_what, spec, message) => {
    const r = await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(rtmpServer(ns, 'bad', spec)), allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it.each([
    ['MPEG-TS with Low-Latency HLS for one app (the rule wins)', { variant: 'mpegts', rules: [{ app: 'studio', lowLatency: true }] }],
    ['Low-Latency HLS with MPEG-TS for one app (the rule wins)', { lowLatency: true, rules: [{ app: 'radio', variant: 'mpegts' }] }],
  ])('takes %s', async (_what, hls) => {
    const input = JSON.stringify(rtmpServer(ns, 'hls', { hls }));
    const r = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], { input, allowFailure: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('takes distinct RTMPS and HTTPS ports and a trusted proxy range', async () => {
    const spec = {
      tls: { secretName: 'edge-tls', https: true, rtmpsPort: 8443, httpsPort: 9443 },
      rtmpd: { httpForwardedFrom: ['10.0.0.0/8'] },
    };
    const r = await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(rtmpServer(ns, 'good', spec)), allowFailure: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('the RtmpServer CRD with the liveness probe on the HTTP port', () => {
  // the pods then do not open spec.ports.health (8081 by default), so other ports may take its number
  it.each([
    ['the HTTP port', { ports: { http: 8081 } }],
    ['the RTMPS port', { tls: { secretName: 'edge-tls', rtmpsPort: 8081 } }],
  ])('lets %s have the health port', async (_what, spec) => {
    const input = JSON.stringify(rtmpServer(ns, 'http-liveness', { ...spec, probes: { liveness: { port: 'http' } } }));
    const r = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], { input, allowFailure: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('the RtmpServer CRD on ReadWriteOncePod', () => {
  /** kubectl's answer to a server-side dry run of an RtmpServer with these access modes on the recordings or keyframes volume. */
  const admit = (volume: 'recordings' | 'keyframes', accessModes: string[]) =>
    kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], {
      input: JSON.stringify(rtmpServer(ns, 'modes', { storage: { [volume]: { accessModes } } })),
      allowFailure: true,
    });

  it.each([
    ['recordings', ['ReadWriteOnce', 'ReadWriteOncePod']],
    ['keyframes', ['ReadOnlyMany', 'ReadWriteOncePod', 'ReadWriteMany']],
    ['keyframes', ['ReadWriteOncePod', 'ReadWriteOncePod']],
  ] as const)('refuses it on %s among %j, wherever it stands', async (volume, modes) => {
    const r = await admit(volume, [...modes]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`spec.storage.${volume}.accessModes`);
    expect(r.stderr).toContain('ReadWriteOncePod cannot be combined with other access modes');
  });

  it.each(['recordings', 'keyframes'] as const)('takes it alone on %s', async (volume) => {
    const r = await admit(volume, ['ReadWriteOncePod']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
