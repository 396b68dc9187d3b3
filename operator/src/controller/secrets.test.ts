import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { secretExistence } from './secrets.ts';

/** A fake API server that answers each Secret GET with the status its name asks for, and keeps the requests. */
async function fakeApi(requests: { path: string; headers: IncomingHttpHeaders }[]) {
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ path, headers: req.headers });
    const status = Number(path.split('/').pop()?.replace('status-', ''));
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        status === 200
          ? { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'status-200', namespace: 'media' } }
          : { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status, message: `status ${status}` },
      ),
    );
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
  it("asks for a Secret's metadata only, and tells present from missing; other failures are errors", async () => {
    const requests: { path: string; headers: IncomingHttpHeaders }[] = [];
    const { server, core } = await fakeApi(requests);
    try {
      const exists = secretExistence(core);
      expect(await exists('media', 'status-200')).toBe(true);
      expect(await exists('media', 'status-404')).toBe(false);
      await expect(exists('media', 'status-403')).rejects.toMatchObject({ code: 403 });
      expect(requests.map((r) => r.path)).toEqual([
        '/api/v1/namespaces/media/secrets/status-200',
        '/api/v1/namespaces/media/secrets/status-404',
        '/api/v1/namespaces/media/secrets/status-403',
      ]);
      for (const r of requests) expect(r.headers.accept).toBe('application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
