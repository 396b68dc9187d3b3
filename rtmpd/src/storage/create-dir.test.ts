import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../options.ts';
import { createDir } from './create-dir.ts';

const dir = mkdtempSync(join(tmpdir(), 'create-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createDir', () => {
  it('creates a directory and the parents it lacks, and takes one that exists', async () => {
    const nested = join(dir, 'a', 'b', 'c');
    await createDir(nested, '--storage-dir');
    expect(statSync(nested).isDirectory()).toBe(true);
    await expect(createDir(nested, '--storage-dir')).resolves.toBeUndefined();
  });

  it('refuses a file in the way with a ConfigError naming the option', async () => {
    const file = join(dir, 'file');
    writeFileSync(file, '');
    await expect(createDir(file, '--keyframe-dir')).rejects.toThrow(new ConfigError(`--keyframe-dir ${file}: cannot create it (EEXIST)`));
    await expect(createDir(join(file, 'x'), '--keyframe-dir')).rejects.toThrow(/cannot create it \(ENOTDIR\)$/);
  });

  it('refuses a directory on a kernel file system at once, where Node’s recursive mkdir looped forever (/proc)', async () => {
    await expect(createDir('/proc/rtmpd/x', '--storage-dir')).rejects.toThrow(
      new ConfigError(
        '--storage-dir /proc/rtmpd/x: /proc is a proc file system, kernel state, not storage; choose a directory on a disk or a volume',
      ),
    );
    await expect(createDir('/sys/fs/rtmpd', '--storage-dir')).rejects.toThrow(/\/sys\/fs is a sysfs file system/);
  });
});
