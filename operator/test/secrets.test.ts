// The Secrets an RtmpServer names, checked as rtmpd reads them: one that lacks
// the key the spec names, or holds what rtmpd refuses or what serves nobody,
// is reported in the status, and a change of the Secret reconciles at once
// (it is watched), not at the next periodic reconcile.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { selfSignedTlsPair } from '../src/metrics-tls.ts';
import {
  apply,
  boundVolume,
  condition,
  eventsOf,
  get,
  manualStorage,
  operatorSuite,
  rtmpServer,
  waitCondition,
  waitReady,
} from './harness.ts';

const { id, ns, metric } = operatorSuite('rtmp-secrets');

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

const secret = (name: string, data: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: ns },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});
const setSecret = (name: string, data: Record<string, string>) => apply(secret(name, data));
/** Deletes the Secret and creates it again under its name, in one command (kubectl replace --force). */
const recreateSecret = (name: string, data: Record<string, string>) =>
  kubectl(['replace', '--force', '-f', '-'], { input: JSON.stringify(secret(name, data)) });

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
    // Ready is what the pods say (there are none, once the StatefulSet says so), Stalled what the Secret does.
    const scaledToZero = await waitCondition(ns, 'signed', 'Ready', 'False', 'ScaledToZero', 15_000);
    expect(condition(scaledToZero, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretInvalid' });

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

  it('are read once per resourceVersion, however often the servers naming them reconcile; a change is still checked within seconds', async () => {
    // Counted by the operator's rtmpd_operator_secret_reads_total, which counts the real client's GETs of a Secret.
    const reads = () => metric('rtmpd_operator_secret_reads_total');
    const keys = `counted-${id}`;
    const rules = [{ app: 'live', method: 'keys', keysSecret: { name: keys } }];
    await setSecret(keys, { cam1: 'a-stream-key' });
    await apply(rtmpServer(ns, 'counted', { replicas: 0, auth: { rules } }));
    await stalledSaying('counted', 'False', 'nothing blocks the reconcile', 30_000);
    const before = await reads();
    expect(before).toBeGreaterThan(0);
    // Five new generations, each reconciled (observedGeneration), each also through its ConfigMap's change.
    for (const logLevel of ['debug', 'info', 'debug', 'info', 'debug']) {
      await apply(rtmpServer(ns, 'counted', { replicas: 0, logLevel, auth: { rules } }));
      await eventually(`counted reconciled at logLevel ${logLevel}`, async () => {
        const o = await get('rtmpserver', ns, 'counted');
        return o?.status?.observedGeneration === o?.metadata.generation || undefined;
      });
    }
    expect(await reads()).toBe(before);
    await setSecret(keys, { '.kubelet-only': 'x' });
    await stalledSaying(
      'counted',
      'True',
      `Secret "${keys}" (spec.auth.rules[0].keysSecret) holds no stream key: every client of the rule is refused`,
    );
    expect(await reads()).toBe(before + 1);
  });

  it('changed faster than it is reconciled, or deleted and made again under its name: the status ends with what it holds now', async () => {
    // Written back to back, each version lands while the reconcile queued by an earlier one runs: that
    // reconcile reads a newer version than its watch event named. A verdict kept by name, not by
    // resourceVersion, would stay the first one read.
    const keys = `raced-${id}`;
    const rules = [{ app: 'live', method: 'keys', keysSecret: { name: keys } }];
    const good = { cam1: 'a-stream-key' };
    const empty = { '.kubelet-only': 'x' };
    const refused = `Secret "${keys}" (spec.auth.rules[0].keysSecret) holds no stream key: every client of the rule is refused`;
    await setSecret(keys, good);
    await apply(rtmpServer(ns, 'raced', { replicas: 0, auth: { rules } }));
    await stalledSaying('raced', 'False', 'nothing blocks the reconcile', 30_000);

    for (const data of [empty, good, empty, good, empty]) await setSecret(keys, data);
    await stalledSaying('raced', 'True', refused);
    for (const data of [good, empty, good]) await setSecret(keys, data);
    await stalledSaying('raced', 'False', 'nothing blocks the reconcile');

    // A new Secret under the old name: a new uid and resourceVersion, whatever the watch saw in between.
    await recreateSecret(keys, empty);
    await stalledSaying('raced', 'True', refused);
    await recreateSecret(keys, good);
    await stalledSaying('raced', 'False', 'nothing blocks the reconcile');
  });

  it('gone bad under running pods: Stalled says so, Ready stays what the pods say', async () => {
    const keys = `served-${id}`;
    await setSecret(keys, { cam1: 'a-stream-key' });
    await apply(['recordings', 'keyframes'].map((v) => boundVolume(ns, `${v}-served-0`)));
    const spec = { storage: manualStorage, auth: { rules: [{ app: 'live', method: 'keys', keysSecret: { name: keys } }] } };
    await apply(rtmpServer(ns, 'served', spec));
    const ready = condition(await waitReady(ns, 'served'), 'Ready');
    await setSecret(keys, { '.kubelet-only': 'x' });
    const stalled = await waitCondition(ns, 'served', 'Stalled', 'True', 'SecretInvalid', 15_000);
    expect(condition(stalled, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'PodsReady',
      message: '1 of 1 pods ready; see Stalled for a Secret they cannot use',
      lastTransitionTime: ready?.lastTransitionTime,
    });
    expect(stalled.status.image).toBeDefined();
  });

  it('a spec.tls certificate: expiring within 14 days a Warning Event, expired Stalled, its notAfter a metric while the server names it', async () => {
    const tls = `expiring-${id}`;
    const notAfter = (cert: string) => new Date(new X509Certificate(cert).validTo);
    const soon = selfSignedTlsPair(['rtmp.example.com'], 3);
    await setSecret(tls, { 'tls.crt': soon.cert, 'tls.key': soon.key });
    await apply(rtmpServer(ns, 'expiring', { replicas: 0, tls: { secretName: tls } }));
    await stalledSaying('expiring', 'False', 'nothing blocks the reconcile', 30_000);
    const event = await eventually('a CertificateExpiring Event', async () => (await eventsOf(ns, 'expiring', 'CertificateExpiring'))[0]);
    expect(event.type).toBe('Warning');
    expect(event.message).toBe(
      `Secret "${tls}" (spec.tls.secretName): the certificate in tls.crt expires at ${notAfter(soon.cert).toISOString()}, in 2 days`,
    );
    const series = 'rtmpd_operator_certificate_expiration_timestamp_seconds';
    const labels = `rtmpserver="expiring",secret="${tls}"`;
    expect(await metric(series, labels)).toBe(notAfter(soon.cert).getTime() / 1000);

    // Valid for a day, made three days ago.
    const expired = selfSignedTlsPair(['rtmp.example.com'], 1, new Date(Date.now() - 3 * 86_400_000));
    await setSecret(tls, { 'tls.crt': expired.cert, 'tls.key': expired.key });
    const stalled = await stalledSaying(
      'expiring',
      'True',
      `Secret "${tls}" (spec.tls.secretName): the certificate in tls.crt expired at ${notAfter(expired.cert).toISOString()}: RTMPS and HTTPS clients refuse it`,
    );
    expect(stalled.reason).toBe('CertificateExpired');
    expect(await metric(series, labels)).toBe(notAfter(expired.cert).getTime() / 1000);

    await kubectl(['delete', 'rtmpserver', 'expiring', '-n', ns]);
    await eventually('its series gone', async () => ((await metric(series, labels)) === 0 ? true : undefined));
  });
});
