// Whether a Secret exists, asked as metadata only: the API server answers with
// a PartialObjectMetadata, so the Secret's data never reaches the operator.
import { ApiException, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';

export type SecretExists = (namespace: string, name: string) => Promise<boolean>;

const metadataOnly = setHeaderOptions('Accept', 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1');

export const secretExistence =
  (core: CoreV1Api): SecretExists =>
  async (namespace, name) => {
    try {
      await core.readNamespacedSecret({ name, namespace }, metadataOnly);
      return true;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return false;
      throw err;
    }
  };
