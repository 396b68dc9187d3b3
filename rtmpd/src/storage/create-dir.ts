// The directories rtmpd writes to (--storage-dir, --keyframe-dir), created at
// start one level at a time, once the file system they would be on is known
// to hold files. Not Node's recursive mkdir: under /proc, whose mkdir answers
// ENOENT though the parent is there, it retries forever and rtmpd never starts.
import { mkdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../options.ts';

/**
 * Kernel file systems (statfs f_type, linux/magic.h): they show kernel state
 * and hold no recordings. mkdir there fails (proc, sysfs) or makes a kernel
 * object (cgroup, configfs, debugfs).
 */
const KERNEL_FILE_SYSTEMS = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x1cd1, 'devpts'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x65735543, 'fusectl'],
]);

const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/**
 * Creates `dir` and the parents it lacks; a directory rtmpd cannot create is
 * the user's to fix, as a bad flag is: a ConfigError naming the option.
 */
export async function createDir(dir: string, option: string): Promise<void> {
  const cannotCreate = (err: unknown) => new ConfigError(`${option} ${dir}: cannot create it (${errorCode(err)})`);
  const missing: string[] = [];
  let existing = resolve(dir);
  for (;;) {
    try {
      if (!(await stat(existing)).isDirectory()) throw cannotCreate({ code: 'EEXIST' });
      break;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      if (errorCode(err) !== 'ENOENT' || existing === dirname(existing)) throw cannotCreate(err);
      missing.unshift(existing);
      existing = dirname(existing);
    }
  }
  const kernel = KERNEL_FILE_SYSTEMS.get((await statfs(existing)).type);
  if (kernel)
    throw new ConfigError(
      `${option} ${dir}: ${existing} is a ${kernel} file system, kernel state, not storage; choose a directory on a disk or a volume`,
    );
  for (const path of missing) {
    try {
      await mkdir(path);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw cannotCreate(err);
    }
  }
}
