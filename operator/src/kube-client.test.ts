import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { loadKubeConfig } from './kube-client.ts';

const file = join(mkdtempSync(join(tmpdir(), 'kube-client-')), 'kubeconfig');
writeFileSync(
  file,
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 'abc' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  }),
);

const dispatcherOf = async (kc: KubeConfig) => {
  const ctx = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return { dispatcher: ctx.getDispatcher(), authorization: ctx.getHeaders().Authorization };
};

describe('loadKubeConfig', () => {
  it('hands every request the same connection pool, with the credentials set per request', async () => {
    const kc = loadKubeConfig(file);
    const [a, b] = [await dispatcherOf(kc), await dispatcherOf(kc)];
    expect(a.dispatcher).toBeDefined();
    expect(a.dispatcher).toBe(b.dispatcher);
    expect(b.authorization).toBe('Bearer abc');
  });

  it('fixes what client-node does by itself: a new pool per request', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    expect((await dispatcherOf(kc)).dispatcher).not.toBe((await dispatcherOf(kc)).dispatcher);
  });
});
