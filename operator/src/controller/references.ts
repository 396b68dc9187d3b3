// What each cached RtmpServer names, kept from the RtmpServers' watch: the
// Secrets it reads, so that a Secret's change reconciles the servers naming
// it, and the names its children take, so that when a child of one server is
// deleted, another server that wants the same name (the loser of a name
// collision) is reconciled at once rather than after its backoff.
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseSpec, type RtmpServer } from '../api/rtmpserver.ts';
import type { InformerEvent } from './informer.ts';
import { childNames, perPodClaimServer } from './names.ts';
import { referencedSecrets } from './rtmpd-config.ts';
import type { SecretVerdicts } from './secrets.ts';

interface Named {
  secrets: Set<string>;
  children: Set<string>;
}

const serverKey = (server: KubernetesObject): string => `${server.metadata?.namespace ?? ''}/${server.metadata?.name ?? ''}`;

/** A spec that does not parse names nothing (its status says why). */
function namedBy(server: KubernetesObject & { spec?: unknown }): Named {
  try {
    const spec = parseSpec(server.spec);
    const children = childNames({ metadata: { name: server.metadata?.name ?? '' }, spec } as RtmpServer);
    return {
      secrets: new Set(referencedSecrets(spec).map((r) => r.name)),
      children: new Set(Object.values(children).filter((n) => typeof n === 'string')),
    };
  } catch {
    return { secrets: new Set(), children: new Set() };
  }
}

export class ServerReferences {
  /** namespace/server → what it names (in its namespace). */
  readonly #byServer = new Map<string, Named>();

  /** Records what a server names; returns the Secrets it stopped naming that no server of its namespace names now. */
  record(server: KubernetesObject & { spec?: unknown }): string[] {
    const key = serverKey(server);
    const before = this.#byServer.get(key)?.secrets ?? new Set();
    this.#byServer.set(key, namedBy(server));
    return this.#unnamed(server, before);
  }

  /** Forgets a deleted server; returns the Secrets no server of its namespace names now. */
  forget(server: KubernetesObject): string[] {
    const key = serverKey(server);
    const before = this.#byServer.get(key)?.secrets ?? new Set();
    this.#byServer.delete(key);
    return this.#unnamed(server, before);
  }

  /** The namespace/name keys of the servers that name this Secret. */
  serversNamingSecret(namespace: string, secret: string): string[] {
    return this.#serversWith(namespace, (n) => n.secrets.has(secret));
  }

  /** Whether a server of the namespace names this Secret: only then is a verdict on it worth keeping. */
  namesSecret(namespace: string, secret: string): boolean {
    return this.serversNamingSecret(namespace, secret).length > 0;
  }

  /** The namespace/name keys of the servers one of whose children takes this name (of any kind). */
  serversNamingChild(namespace: string, child: string): string[] {
    return this.#serversWith(namespace, (n) => n.children.has(child));
  }

  /**
   * Whether a StatefulSet or claim of this name can be a server's: a name a child of a
   * server of the namespace takes, or a per-pod claim of one.
   */
  mayBeChild(namespace: string, name: string): boolean {
    const perPodOf = perPodClaimServer(name);
    return (
      (perPodOf !== undefined && this.#byServer.has(`${namespace}/${perPodOf}`)) || this.serversNamingChild(namespace, name).length > 0
    );
  }

  #serversWith(namespace: string, test: (named: Named) => boolean): string[] {
    return [...this.#byServer].filter(([key, named]) => key.startsWith(`${namespace}/`) && test(named)).map(([key]) => key);
  }

  #unnamed(server: KubernetesObject, before: Set<string>): string[] {
    const namespace = server.metadata?.namespace ?? '';
    return [...before].filter((secret) => this.serversNamingSecret(namespace, secret).length === 0);
  }
}

/** What the servers' watch does with an event: records (or forgets) what the server names, and drops the verdicts on the Secrets no server of its namespace names now. */
export function recordServerEvent(
  references: ServerReferences,
  verdicts: SecretVerdicts,
  event: InformerEvent,
  server: KubernetesObject & { spec?: unknown },
): void {
  const unnamed = event === 'delete' ? references.forget(server) : references.record(server);
  for (const secret of unnamed) verdicts.forget(server.metadata?.namespace ?? '', secret);
}
