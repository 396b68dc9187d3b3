// Whether a Secret exists, asked without reading it: a server-side dry-run
// create of an empty Secret of that name, which the API server refuses with
// 409 AlreadyExists when one exists and otherwise persists nothing. It needs
// only `create` on Secrets, the verb the fleet token's Secret needs anyway, so
// the operator holds no verb that could read a Secret's data.
import { ApiException, type CoreV1Api } from '@kubernetes/client-node';

export type SecretExists = (namespace: string, name: string) => Promise<boolean>;

export const secretExistence =
  (core: CoreV1Api): SecretExists =>
  async (namespace, name) => {
    try {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace } }, dryRun: 'All' });
      return false;
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return true;
      throw err;
    }
  };
