import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Informer, type InformerEvent } from './informer.ts';

const cm = (name: string, rv: string, data = ''): KubernetesObject & { data: Record<string, string> } => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', resourceVersion: rv },
  data: { v: data },
});

/** A fake API server: discovery, a scripted list per call and a scripted watch per call. */
function fakeApi(
  lists: object[][],
  watches: ((res: ServerResponse) => void)[],
  requests: string[],
): Promise<{ server: Server; url: string }> {
  let listCall = 0;
  let watchCall = 0;
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${url.pathname}?${url.searchParams.toString()}`);
    if (url.pathname === '/api/v1') {
      res.end(
        JSON.stringify({
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [{ name: 'configmaps', namespaced: true, kind: 'ConfigMap', verbs: ['list', 'watch'] }],
        }),
      );
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      const script = watches[watchCall++];
      if (script) script(res);
      else {
        res.writeHead(200); // unscripted watches hang open
        res.flushHeaders();
      }
      return;
    }
    const items = lists[Math.min(listCall, lists.length - 1)] ?? [];
    listCall++;
    res.end(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: String(10 * listCall) }, items }));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })),
  );
}

const line = (res: ServerResponse, type: string, object: object) => {
  if (!res.headersSent) res.writeHead(200);
  res.write(`${JSON.stringify({ type, object })}\n`);
};

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

let server: Server | undefined;
let informer: Informer<KubernetesObject> | undefined;
afterEach(async () => {
  await informer?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

describe('Informer', () => {
  it('lists, watches from the list version, follows bookmarks, resumes, and re-lists on 410 Gone', async () => {
    const requests: string[] = [];
    const api = await fakeApi(
      [
        [cm('a', '5'), cm('b', '6')],
        [cm('a', '15', 'changed'), cm('c', '16')],
      ],
      [
        (res) => {
          line(res, 'ADDED', cm('d', '11'));
          line(res, 'MODIFIED', cm('a', '12', 'x'));
          line(res, 'BOOKMARK', { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '13' } });
          res.end(); // server closes the watch: resume from 13
        },
        (res) => {
          line(res, 'DELETED', cm('d', '14'));
          line(res, 'ERROR', { kind: 'Status', code: 410, message: 'too old resource version' });
          res.end();
        },
      ],
      requests,
    );
    server = api.server;
    const kc = kubeConfig(api.url);
    const events: string[] = [];
    informer = new Informer<KubernetesObject>({
      kubeConfig: kc,
      type: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
      namespace: 'ns',
      labelSelector: 'app=x',
      fieldSelector: 'metadata.name!=z',
      log: pino({ level: 'silent' }),
      onEvent: (e: InformerEvent, o) => events.push(`${e} ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    });
    informer.start();
    await informer.waitForSync(5000);
    const deadline = Date.now() + 5000;
    // The re-list's events come before its watch is opened: wait for both.
    const watchCount = () => requests.filter((r) => r.includes('watch=true')).length;
    while ((events.length < 8 || watchCount() < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual([
      'add a@5',
      'add b@6', // first list
      'add d@11',
      'update a@12', // first watch
      'delete d@14', // resumed watch, then 410
      'update a@15',
      'add c@16',
      'delete b@6', // re-list: changed, new, vanished
    ]);
    const watches = requests.filter((r) => r.includes('watch=true'));
    expect(watches[0]).toContain('resourceVersion=10');
    expect(watches[0]).toContain('allowWatchBookmarks=true');
    expect(watches[0]).toContain('labelSelector=app%3Dx');
    // the list and every watch select the same objects
    const lists = requests.filter((r) => r.startsWith('/api/v1/namespaces/ns/configmaps') && !r.includes('watch=true'));
    expect(lists).toHaveLength(2);
    for (const r of [...lists, ...watches]) expect(r).toContain('fieldSelector=metadata.name%21%3Dz');
    expect(watches[1]).toContain('resourceVersion=13'); // from the bookmark
    expect(watches[2]).toContain('resourceVersion=20'); // from the re-list
    expect(
      informer
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(informer.get('ns', 'a')?.metadata?.resourceVersion).toBe('15');
  });

  it('reconnects after a failed watch with backoff, from the same resourceVersion (no re-list)', async () => {
    const requests: string[] = [];
    const api = await fakeApi(
      [[cm('a', '5')]],
      [(res) => res.writeHead(500).end('{"kind":"Status","code":500}'), (res) => line(res, 'ADDED', cm('b', '11'))],
      requests,
    );
    server = api.server;
    const events: string[] = [];
    informer = new Informer<KubernetesObject>({
      kubeConfig: kubeConfig(api.url),
      type: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
      log: pino({ level: 'silent' }),
      onEvent: (e, o) => events.push(`${e} ${o.metadata?.name}`),
    });
    const started = Date.now();
    informer.start();
    const deadline = Date.now() + 5000;
    while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual(['add a', 'add b']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // backed off (800 ms ± jitter)
    expect(requests.filter((r) => !r.includes('watch=true') && r.startsWith('/api/v1/configmaps'))).toHaveLength(1);
    const versions = requests.filter((r) => r.includes('watch=true')).map((r) => /resourceVersion=(\d+)/.exec(r)?.[1]);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expect(new Set(versions)).toEqual(new Set(['10']));
  });

  it('stops at once while its list is still unanswered (a busy API server), and caches nothing it answers later', async () => {
    const held: ServerResponse[] = [];
    server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (new URL(req.url ?? '/', 'http://x').pathname === '/api/v1') {
        res.end(
          JSON.stringify({
            kind: 'APIResourceList',
            groupVersion: 'v1',
            resources: [{ name: 'configmaps', namespaced: true, kind: 'ConfigMap' }],
          }),
        );
      } else held.push(res);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const events: string[] = [];
    informer = new Informer<KubernetesObject>({
      kubeConfig: kubeConfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      type: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
      log: pino({ level: 'silent' }),
      onEvent: (e, o) => events.push(`${e} ${o.metadata?.name}`),
    });
    informer.start();
    while (!held.length) await new Promise((r) => setTimeout(r, 5));
    await informer.stop();
    const answer = (res: ServerResponse) =>
      res.end(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [cm('late', '1')] }));
    answer(held[0]!);
    // The late answer has been read once an informer that asks after it was written has its own
    // (the same answer, on another connection of the same client): the stopped one had its chance.
    const witness = new Informer<KubernetesObject>({
      kubeConfig: kubeConfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      type: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
      log: pino({ level: 'silent' }),
      onEvent: () => {},
    });
    witness.start();
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    answer(held[1]!);
    await witness.waitForSync(5000);
    await witness.stop();
    expect(witness.list().map((o) => o.metadata?.name)).toEqual(['late']);
    expect(events).toEqual([]);
    expect(informer.list()).toEqual([]);
  });
});
