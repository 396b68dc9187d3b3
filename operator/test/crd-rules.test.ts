// CRD rules the operator tests do not reach, on the real API server: only the
// installed CRD answers, so no operator runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../e2e/cluster/kube.ts';
import { installCrd, rtmpServer, suffix } from './harness.ts';

const ns = `rtmp-crd-${suffix()}`;

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
  ])('refuses %s', async (_what, spec, message) => {
    const r = await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(rtmpServer(ns, 'bad', spec)), allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
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
