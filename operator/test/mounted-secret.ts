// A kubernetes.io/tls Secret mounted as the kubelet mounts it, for the tests of
// --metrics-cert-dir: a renewal changes both files in one rename, as it does in a pod.
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsPair } from '../src/metrics-tls.ts';

/** A kubernetes.io/tls Secret mounted as the kubelet mounts it, and its updates. */
export interface MountedSecret {
  /** Writes a version of the Secret in a directory of its own and points `..data` at it; returns that directory's name. */
  put(pair: TlsPair): Promise<string>;
  /** Points `..data` at a version, as the kubelet does: one rename changes both files at once. */
  point(version: string): Promise<void>;
}

/** Lays out `pair` as the kubelet mounts a Secret: tls.crt and tls.key link into `..data`, which links to the version's directory. */
export async function mountSecret(dir: string, pair: TlsPair): Promise<MountedSecret> {
  let versions = 0;
  const secret: MountedSecret = {
    async put({ cert, key }) {
      const version = `..${++versions}`;
      await mkdir(join(dir, version));
      await writeFile(join(dir, version, 'tls.crt'), cert);
      await writeFile(join(dir, version, 'tls.key'), key);
      await secret.point(version);
      return version;
    },
    async point(version) {
      await symlink(version, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
  await secret.put(pair);
  for (const name of ['tls.crt', 'tls.key']) await symlink(join('..data', name), join(dir, name));
  return secret;
}
