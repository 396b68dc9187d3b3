// The KubeConfig every API client of the operator is made from.
import { KubeConfig } from '@kubernetes/client-node';

type DispatcherFactory = (cluster: unknown, agentOptions: unknown) => unknown;

/**
 * client-node (2.0) makes a new undici Agent for every request: a new TCP and
 * TLS connection, with the CA parsed into a new secure context each time, and
 * an idle socket left behind. With hundreds of RtmpServers that is most of the
 * operator's memory and much of its CPU. One Agent for the process keeps the
 * connections alive and reused, as client-go's shared transport does. Bearer
 * tokens (the rotated ServiceAccount token) travel in headers, per request,
 * so sharing the Agent keeps them fresh.
 */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  const internals = kc as unknown as { createDispatcher: DispatcherFactory };
  const create = internals.createDispatcher.bind(kc);
  let shared: unknown;
  internals.createDispatcher = (cluster, agentOptions) => (shared ??= create(cluster, agentOptions));
  return kc;
}
