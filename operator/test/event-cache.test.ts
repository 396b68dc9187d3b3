// The Events' cache on the real API server: of the Events its field selectors
// match, anyone may create any number, about any object, with messages as long
// as a request. It keeps those whose object can be a known RtmpServer's, each
// with its message clipped.
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { maxEventMessage } from '../src/controller/causes.ts';
import { EventCache } from '../src/controller/event-cache.ts';
import { ServerReferences } from '../src/controller/references.ts';
import { apply, suffix } from './harness.ts';
import { warningEvent } from './warning-event.ts';

const ns = `event-cache-${suffix()}`;
beforeAll(() => kubectl(['create', 'namespace', ns]), 60_000);
afterAll(() => kubectl(['delete', 'namespace', ns, '--wait=false']), 60_000);

const claimWarning = (name: string, claim: string, message: string): object =>
  warningEvent({
    namespace: ns,
    name,
    about: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: claim },
    reason: 'ProvisioningFailed',
    message,
    component: 'persistentvolume-controller',
  });

describe('the Events’ cache', () => {
  it('holds no Event about an object no RtmpServer can own, and of the others a clipped message', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster().kubeconfig);
    const references = new ServerReferences();
    references.record({ metadata: { namespace: ns, name: 'edge' }, spec: {} } as KubernetesObject);
    const reported: string[] = [];
    const cache = new EventCache({
      kubeConfig,
      namespace: ns,
      references,
      log: pino({ level: 'silent' }),
      onEvent: (_, kind, name) => reported.push(`${kind}/${name}`),
    });
    try {
      for (const i of cache.informers) i.start();
      await Promise.all(cache.informers.map((i) => i.waitForSync(30_000)));
      const long = `waiting for a volume: ${'x'.repeat(100 * 1024)}`;
      // Both match one informer's selector (a claim's Warnings), whose watch delivers them in
      // this order: once edge's is cached, the other one has been seen.
      await apply(claimWarning('unrelated', 'data-db-0', long));
      await apply(claimWarning('edge', 'recordings-edge-0', long));
      const [kept] = await eventually('edge’s claim’s Warning cached', async () => {
        const about = cache.about(ns, 'PersistentVolumeClaim', 'recordings-edge-0');
        return about.length ? about : undefined;
      });
      expect(kept?.message).toBe(`${long.slice(0, maxEventMessage)}…`);
      expect(cache.about(ns, 'PersistentVolumeClaim', 'data-db-0')).toEqual([]);
      expect(cache.informers.flatMap((i) => i.list()).map((e) => e.metadata?.name)).toEqual(['edge']);
      expect(reported).toEqual(['PersistentVolumeClaim/recordings-edge-0']);
    } finally {
      await Promise.all(cache.informers.map((i) => i.stop()));
    }
  });
});
