import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { secretExistence } from './secrets.ts';

interface SeenRequest {
  method: string;
  path: string;
  body: unknown;
}

/**
 * A stand-in API server (a unit test has no kube-apiserver; operator/test runs
 * the same code against a real one): it answers each Secret create with the
 * status the Secret's name asks for, and keeps the requests.
 */
async function fakeApi(requests: SeenRequest[]) {
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text) as { metadata: { name: string } };
      requests.push({ method: req.method ?? '', path: req.url ?? '/', body });
      const status = Number(body.metadata.name.replace('status-', ''));
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          status === 201
            ? { kind: 'Secret', apiVersion: 'v1', metadata: body.metadata }
            : { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status, message: `status ${status}` },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { server, core: kc.makeApiClient(CoreV1Api) };
}

describe('secretExistence', () => {
  it('asks with a dry-run create of an empty Secret, tells present (409) from missing; other failures are errors', async () => {
    const requests: SeenRequest[] = [];
    const { server, core } = await fakeApi(requests);
    try {
      const exists = secretExistence(core);
      expect(await exists('media', 'status-409')).toBe(true);
      expect(await exists('media', 'status-201')).toBe(false);
      await expect(exists('media', 'status-403')).rejects.toMatchObject({ code: 403 });
      for (const [i, name] of ['status-409', 'status-201', 'status-403'].entries())
        expect(requests[i]).toEqual({
          method: 'POST',
          path: '/api/v1/namespaces/media/secrets?dryRun=All',
          body: { metadata: { name, namespace: 'media' } },
        });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
