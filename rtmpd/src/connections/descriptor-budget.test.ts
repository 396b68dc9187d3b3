import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DESCRIPTOR_MARGIN, descriptorsNeeded, softOpenFileLimit, warnIfDescriptorsShort } from './descriptor-budget.ts';

/** /proc/self/limits as Linux writes it, with the open-file line given. */
const limitsText = (openFiles: string) =>
  [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             95892                95892                processes ',
    `Max open files            ${openFiles}                files     `,
    'Max locked memory         8388608              8388608              bytes     ',
  ].join('\n');

function warnings(caps: { maxConnections: number; httpMaxConnections: number }, limits: string | undefined) {
  const logged: { msg: string; openFileLimit?: number; needed?: number }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) });
  warnIfDescriptorsShort(caps, logger, () => limits);
  return logged;
}

describe('descriptor budget', () => {
  it('reads the soft open-file limit, none when unlimited', () => {
    expect(softOpenFileLimit(limitsText('20000                1048576             '))).toBe(20_000);
    expect(softOpenFileLimit(limitsText('unlimited            unlimited           '))).toBeUndefined();
    expect(softOpenFileLimit('')).toBeUndefined();
  });

  it("reads this process's soft limit as the shell's ulimit -Sn does", () => {
    if (process.platform !== 'linux') return;
    const shell = execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim();
    const own = softOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
    expect(own === undefined ? 'unlimited' : String(own)).toBe(shell);
  });

  it('counts both connection caps and the margin', () => {
    expect(descriptorsNeeded({ maxConnections: 10_000, httpMaxConnections: 10_000 })).toBe(20_000 + DESCRIPTOR_MARGIN);
  });

  it('warns when the defaults pass a 20,000 limit, naming the options and the limit', () => {
    const [warning, ...more] = warnings(
      { maxConnections: 10_000, httpMaxConnections: 10_000 },
      limitsText('20000                20000               '),
    );
    expect(more).toEqual([]);
    expect(warning!.msg).toMatch(/--max-connections \(10000\) plus --http-max-connections \(10000\) .* open-file limit \(20000,/);
    expect(warning).toMatchObject({ openFileLimit: 20_000, needed: 20_000 + DESCRIPTOR_MARGIN });
  });

  it('stays quiet within the limit, when unlimited and where there is no /proc', () => {
    const limit = String(20_000 + DESCRIPTOR_MARGIN).padEnd(21);
    expect(warnings({ maxConnections: 10_000, httpMaxConnections: 10_000 }, limitsText(`${limit}${limit}`))).toEqual([]);
    expect(
      warnings({ maxConnections: 10_000, httpMaxConnections: 10_000 }, limitsText('unlimited            unlimited           ')),
    ).toEqual([]);
    expect(warnings({ maxConnections: 10_000, httpMaxConnections: 10_000 }, undefined)).toEqual([]);
  });
});
