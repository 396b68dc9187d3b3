// The Secrets an RtmpServer names, checked as rtmpd reads them: one that lacks
// the key the spec names, or holds what rtmpd refuses or what serves nobody,
// is reported in the status, and a change of the Secret reconciles at once
// (it is watched), not at the next periodic reconcile.
import { describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { selfSignedTlsPair } from '../src/metrics-tls.ts';
import { apply, condition, get, operatorSuite, rtmpServer } from './harness.ts';

const { id, ns } = operatorSuite('rtmp-secrets');

/** The Stalled condition once its message is this one; a watched Secret gets there in seconds (the fallback requeue is 30 s). */
const stalledSaying = (name: string, status: string, message: string, withinMs = 15_000) =>
  eventually(
    `${name} Stalled=${status}: ${message}`,
    async () => {
      const c = condition(await get('rtmpserver', ns, name), 'Stalled');
      return c?.status === status && c.message === message ? c : undefined;
    },
    withinMs,
  );

const setSecret = (name: string, data: Record<string, string>) =>
  apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });

describe('the Secrets an RtmpServer names', () => {
  it('a missing key, then a value that serves nobody, then a good one: each in the status within seconds of the change', async () => {
    const hmac = `hmac-${id}`;
    await setSecret(hmac, { other: 'not-this-one' });
    await apply(
      rtmpServer(ns, 'signed', {
        replicas: 0,
        auth: { rules: [{ app: 'events', method: 'signed', secret: { name: hmac, key: 'hmac' } }] },
      }),
    );
    const missing = await stalledSaying(
      'signed',
      'True',
      `Secret "${hmac}" (spec.auth.rules[0].secret) has no key "hmac" (it has other)`,
      30_000,
    );
    expect(missing.reason).toBe('SecretInvalid');
    expect(condition(await get('rtmpserver', ns, 'signed'), 'Ready')).toMatchObject({ status: 'False', reason: 'SecretInvalid' });

    // Secrets are applied without touching the RtmpServer: only the Secret's watch can bring the change.
    const before = (await get('rtmpserver', ns, 'signed'))?.metadata.generation;
    await setSecret(hmac, { other: 'not-this-one', hmac: '# a comment, no secret\n' });
    await stalledSaying('signed', 'True', `Secret "${hmac}" (spec.auth.rules[0].secret) holds no secret: every signed URL is refused`);
    await setSecret(hmac, { hmac: 'a-good-hmac-secret\n' });
    await stalledSaying('signed', 'False', 'nothing blocks the reconcile');
    expect((await get('rtmpserver', ns, 'signed'))?.metadata.generation).toBe(before);
    // No value reached the status, nor an Event.
    const events = await kubectl(['get', 'events', '-n', ns, '-o', 'json']);
    for (const text of [JSON.stringify(await get('rtmpserver', ns, 'signed')), events.stdout])
      for (const value of ['not-this-one', 'a-good-hmac-secret']) expect(text).not.toContain(value);
  });

  it('what rtmpd refuses, in its own words, for each Secret at once', async () => {
    const tokens = `tokens-${id}`;
    const keys = `keys-${id}`;
    await setSecret(tokens, { token: 'too-short' });
    await setSecret(keys, { '.kubelet-only': 'x' });
    await apply(
      rtmpServer(ns, 'refused', {
        replicas: 0,
        auth: { rules: [{ app: 'live', method: 'keys', keysSecret: { name: keys } }], apiTokenSecret: { name: tokens, key: 'token' } },
      }),
    );
    await stalledSaying(
      'refused',
      'True',
      `Secret "${keys}" (spec.auth.rules[0].keysSecret) holds no stream key: every client of the rule is refused; ` +
        `Secret "${tokens}" (spec.auth.apiTokenSecret) is refused by rtmpd: API tokens must be at least 16 characters`,
      30_000,
    );
  });

  it('a TLS pair and a CA bundle parsed as rtmpd reads them, the status quoting neither', async () => {
    const tls = `tls-${id}`;
    const ca = `ca-${id}`;
    const pair = selfSignedTlsPair(['rtmp.example.com']);
    const stranger = selfSignedTlsPair(['other.example.com']);
    // Both keys there: only parsing them finds that the key is another certificate's, and that the bundle holds a key.
    await setSecret(tls, { 'tls.crt': pair.cert, 'tls.key': stranger.key });
    await setSecret(ca, { 'ca.crt': stranger.key });
    await apply(
      rtmpServer(ns, 'secured', {
        replicas: 0,
        tls: { secretName: tls },
        forwards: { caSecret: { name: ca, key: 'ca.crt' } },
      }),
    );
    const stalled = await stalledSaying(
      'secured',
      'True',
      `Secret "${ca}" (spec.forwards.caSecret) holds no PEM certificate: forwards over RTMPS trust only the default roots; ` +
        `Secret "${tls}" (spec.tls.secretName) is refused by rtmpd: tls.key is not the key of the first certificate in tls.crt`,
      30_000,
    );
    expect(stalled.reason).toBe('SecretInvalid');
    await setSecret(tls, { 'tls.crt': pair.cert, 'tls.key': pair.key });
    await setSecret(ca, { 'ca.crt': stranger.cert });
    await stalledSaying('secured', 'False', 'nothing blocks the reconcile');
    const events = await kubectl(['get', 'events', '-n', ns, '-o', 'json']);
    const pemBody = (pem: string) => pem.split('\n')[1] ?? '';
    for (const text of [JSON.stringify(await get('rtmpserver', ns, 'secured')), events.stdout])
      for (const pem of [pair.key, stranger.key, pair.cert]) expect(text).not.toContain(pemBody(pem));
  });

  it('are read only in the namespaces the operator watches', async () => {
    const as = `--as=system:serviceaccount:rtmp-op-${id}:rtmpd-operator`;
    for (const verb of ['get', 'list', 'watch']) {
      expect((await kubectl(['auth', 'can-i', verb, 'secrets', '-n', ns, as], { allowFailure: true })).stdout.trim()).toBe('yes');
      expect((await kubectl(['auth', 'can-i', verb, 'secrets', '-n', 'default', as], { allowFailure: true })).stdout.trim()).toBe('no');
    }
  });
});
