import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError } from '../options.ts';
import { readEntries, watchPath } from '../secrets/mounted.ts';
import { keyAccepts, MAX_SECRET_LENGTH, parseKeys, type Keys } from './key-store.ts';

const logger = pino({ level: 'silent' });

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rtmpd-keys-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Lays out `files` as the kubelet mounts a Secret: files in a timestamped directory, reached through ..data. */
async function writeSecretVolume(dir: string, generation: number, files: Record<string, string>): Promise<void> {
  const data = join(dir, `..2026_${generation}`);
  await mkdir(data);
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(data, name), content);
    await symlink(join('..data', name), join(dir, name)).catch(() => {});
  }
  await symlink(`..2026_${generation}`, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}

describe('key store', () => {
  it('reads a YAML file of key: secret or key: [secrets]', async () => {
    const file = join(await tempDir(), 'keys.yaml');
    await writeFile(file, 'cam1: s3cr3t\ncam2: [old-one, new-one]\n');
    const keys = parseKeys(await readEntries(file));
    expect(keyAccepts(keys, 'cam1', 's3cr3t')).toBe(true);
    expect(keyAccepts(keys, 'cam1', 's3cr3T')).toBe(false);
    expect(keyAccepts(keys, 'cam2', 'old-one')).toBe(true);
    expect(keyAccepts(keys, 'cam2', 'new-one')).toBe(true);
    expect(keyAccepts(keys, 'cam3', '')).toBe(false);
    await writeFile(file, 'cam/1: x\n');
    await expect(readEntries(file).then(parseKeys)).rejects.toThrow(/cam\/1: not a valid stream key/);
    await writeFile(file, '- a\n- b\n');
    await expect(readEntries(file).then(parseKeys)).rejects.toThrow(/must map stream key: secret/);
  });

  it('refuses a secret longer than a credential may be (auth/credentials.ts), which no client could present', async () => {
    const dir = await tempDir();
    const file = join(dir, 'keys.yaml');
    await writeFile(file, `cam1: ${'s'.repeat(MAX_SECRET_LENGTH)}\n`);
    expect(keyAccepts(parseKeys(await readEntries(file)), 'cam1', 's'.repeat(MAX_SECRET_LENGTH))).toBe(true);
    await writeFile(file, `cam1: ${'s'.repeat(MAX_SECRET_LENGTH + 1)}\n`);
    await expect(readEntries(file).then(parseKeys)).rejects.toThrow(/must map stream key: secret \(cam1: /);
    const volume = join(dir, 'volume');
    await mkdir(volume);
    await writeSecretVolume(volume, 1, { cam1: `short\n${'s'.repeat(MAX_SECRET_LENGTH + 1)}\n` });
    await expect(readEntries(volume).then(parseKeys)).rejects.toThrow(/key cam1: a secret is longer than 1024 characters/);
  });

  it('reads a mounted Secret (a file per key, hidden ..data entries skipped) and follows its updates', async () => {
    const dir = await tempDir();
    await writeSecretVolume(dir, 1, { cam1: 's3cr3t\n', cam2: '# rotated\nnew\nold\n' });
    const changes: Keys[] = [];
    const logged: string[] = [];
    const store = await watchPath({
      path: dir,
      option: '--auth-rules [0] (keys)',
      label: 'auth: keys',
      parse: parseKeys,
      logger: pino({}, { write: (line: string) => logged.push((JSON.parse(line) as { msg: string }).msg) }),
      intervalMs: 60_000,
      onChange: (k) => changes.push(k),
    });
    onTestFinished(() => store.close());
    expect([...store.value]).toEqual([
      ['cam1', ['s3cr3t']],
      ['cam2', ['new', 'old']],
    ]);
    await store.poll();
    expect(changes).toHaveLength(0);

    // The kubelet swaps ..data to a new directory: cam1 is gone, cam2 lost its old secret.
    await rm(join(dir, 'cam1'));
    await writeSecretVolume(dir, 2, { cam2: 'new\n' });
    await store.poll();
    expect(changes).toHaveLength(1);
    expect(keyAccepts(store.value, 'cam1', 's3cr3t')).toBe(false);
    expect(keyAccepts(store.value, 'cam2', 'old')).toBe(false);
    expect(keyAccepts(store.value, 'cam2', 'new')).toBe(true);

    // A path that disappears keeps the last good keys.
    await rm(dir, { recursive: true });
    await store.poll();
    expect(keyAccepts(store.value, 'cam2', 'new')).toBe(true);
    // The log says what was (or was not) reloaded, by the label the owner gave.
    expect(logged).toEqual(['auth: keys reloaded', 'auth: keys not reloaded; the last good version stays']);
  });

  it('refuses to start on a path that is not there, or a key file it cannot use, naming the option (a ConfigError)', async () => {
    const dir = await tempDir();
    const start = (path: string) =>
      watchPath({ path, option: '--auth-rules [1] (keys)', label: 'auth: keys', parse: parseKeys, logger, intervalMs: 1000 });
    const missing = join(dir, 'missing');
    await expect(start(missing)).rejects.toThrow(new ConfigError(`--auth-rules [1] (keys) ${missing}: cannot read it (ENOENT)`));
    const unusable = join(dir, 'keys.yaml');
    await writeFile(unusable, '- cam1\n');
    await expect(start(unusable)).rejects.toThrow(ConfigError);
    await expect(start(unusable)).rejects.toThrow(`--auth-rules [1] (keys) ${unusable}: the key file must map stream key: secret`);
  });
});
