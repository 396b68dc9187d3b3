// Whether the API server serves the RtmpServer schema this operator was built
// with. Helm installs a chart's CRD once and never upgrades it, so after an
// operator upgrade the served CRD can be older: fields it lacks are pruned
// from every object the operator writes, silently. The served schema is read
// from the OpenAPI v3 document of the group version (readable by every
// authenticated client, so it needs no RBAC of the operator's).
import { request } from 'node:https';
import { request as plainRequest, type RequestOptions } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

type Json = Record<string, unknown>;

/** Every property path of a structural schema: `spec.storage.recordings.size`, `spec.auth.rules[].app`, `spec.podLabels{}`. */
export function fieldPaths(schema: Json, prefix = ''): string[] {
  const paths: string[] = [];
  const properties = schema.properties as Record<string, Json> | undefined;
  for (const [name, child] of Object.entries(properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    paths.push(path, ...fieldPaths(child, path));
  }
  if (schema.items && typeof schema.items === 'object') paths.push(...fieldPaths(schema.items as Json, `${prefix}[]`));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object')
    paths.push(...fieldPaths(schema.additionalProperties as Json, `${prefix}{}`));
  return paths;
}

/** The spec and status fields of `expected` that `served` lacks (the API server would prune them). */
export function missingFields(expected: Json, served: Json): string[] {
  const pick = (s: Json) => ({ properties: { spec: (s.properties as Json)?.spec ?? {}, status: (s.properties as Json)?.status ?? {} } });
  const have = new Set(fieldPaths(pick(served)));
  const missing = fieldPaths(pick(expected)).filter((p) => !have.has(p));
  // A missing object is named once, not with each of its fields.
  const within = (p: string, q: string) => p.length > q.length && p.startsWith(q) && '.[{'.includes(p[q.length]!);
  return missing.filter((p) => !missing.some((q) => within(p, q)));
}

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** GET of an API server path with the kubeconfig's credentials, parsed as JSON. */
async function getJson(kc: KubeConfig, path: string): Promise<Json> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const url = new URL(path, server);
  const opts: RequestOptions = { headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const send = url.protocol === 'https:' ? request : plainRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { ...opts, method: 'GET', timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200)
          reject(Object.assign(new Error(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 300)}`), { code: res.statusCode }));
        else {
          try {
            resolve(JSON.parse(body) as Json);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** The OpenAPI v3 document of a group version; undefined when the API server does not serve it. */
async function openAPIDocument(kc: KubeConfig, gvk: GroupVersionKind): Promise<Json | undefined> {
  try {
    return await getJson(kc, `/openapi/v3/apis/${gvk.group}/${gvk.version}`);
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/**
 * What is wrong with the CRD an OpenAPI v3 document (undefined: not served)
 * describes, in words for a log line, an Event and /readyz; undefined when it is current.
 */
export function staleReason(doc: Json | undefined, gvk: GroupVersionKind, expected: Json, crdName: string): string | undefined {
  const schemas = ((doc?.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>;
  const served = Object.values(schemas).find((s) =>
    ((s['x-kubernetes-group-version-kind'] as GroupVersionKind[] | undefined) ?? []).some(
      (g) => g.group === gvk.group && g.version === gvk.version && g.kind === gvk.kind,
    ),
  );
  if (!served) return `the API server does not serve ${gvk.kind} (${gvk.group}/${gvk.version}): install the CRD ${crdName}`;
  const missing = missingFields(expected, served);
  if (!missing.length) return undefined;
  const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
  return `the CRD ${crdName} is older than this operator: it lacks ${shown} (the API server would drop them); apply the CRD of this release (kubectl apply --server-side -f crds/)`;
}

/** staleReason() of what the API server serves now. */
export async function staleCrd(kc: KubeConfig, gvk: GroupVersionKind, expected: Json, crdName: string): Promise<string | undefined> {
  return staleReason(await openAPIDocument(kc, gvk), gvk, expected, crdName);
}
