import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bool, ConfigError, loadOptions, optionsHelp, type OptionSet } from './options.ts';

const schema = z.object({
  level: z.enum(['info', 'debug']).default('info').describe('how much to say'),
  port: z.coerce.number().int().min(1).max(65535).default(80).describe('where to listen'),
  verbose: bool.default(false).describe('say more'),
  secretless: z.string().optional().describe('no variable of its own'),
});
const set: OptionSet<typeof schema> = {
  schema,
  envName: (key) => (key === 'secretless' ? undefined : `APP_${key.toUpperCase()}`),
  fallbackEnv: { level: 'OLD_LEVEL' },
  configFile: { flag: 'config', env: 'APP_CONFIG' },
};

const dir = mkdtempSync(join(tmpdir(), 'options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (text: string) => {
  const path = join(dir, `${Math.random()}.yaml`);
  writeFileSync(path, text);
  return path;
};

describe('options loader', () => {
  it('reads defaults < fallback variable < file < variable < flag', () => {
    const f = file('level: debug\nport: 81\n');
    expect(loadOptions(set, [], {}).options).toEqual({ level: 'info', port: 80, verbose: false });
    expect(loadOptions(set, [], { OLD_LEVEL: 'debug' }).options.level).toBe('debug');
    expect(loadOptions(set, ['--config', f], { OLD_LEVEL: 'info' }).options).toMatchObject({ level: 'debug', port: 81 });
    expect(loadOptions(set, [], { APP_CONFIG: f, APP_PORT: '82' }).options.port).toBe(82);
    expect(loadOptions(set, ['--port=83'], { APP_CONFIG: f, APP_PORT: '82' }).options.port).toBe(83);
    expect(loadOptions(set, ['--config', f], {}).file).toBe(f);
  });

  it('takes a bare switch as true, and true/false after it as its value', () => {
    expect(loadOptions(set, ['--verbose'], {}).options.verbose).toBe(true);
    expect(loadOptions(set, ['--verbose', 'false'], { APP_VERBOSE: 'yes' }).options.verbose).toBe(false);
    expect(loadOptions(set, ['--verbose=no'], {}).options.verbose).toBe(false);
    expect(loadOptions(set, [], { APP_VERBOSE: '1' }).options.verbose).toBe(true);
    expect(() => loadOptions(set, ['--verbose', 'loud'], {})).toThrow(/Unexpected argument 'loud'/);
  });

  it('names the flag and variable of a bad value, and refuses unknown flags and file keys', () => {
    expect(() => loadOptions(set, ['--port=0'], {})).toThrow(ConfigError);
    expect(() => loadOptions(set, ['--port=0'], {})).toThrow(/--port \(APP_PORT\): .*got "0"/);
    expect(() => loadOptions(set, [], { APP_LEVEL: 'loud' })).toThrow(/--level \(APP_LEVEL\)/);
    expect(() => loadOptions(set, ['--secretless='], {})).not.toThrow();
    expect(() => loadOptions(set, ['--nope'], {})).toThrow(/Unknown option '--nope' \(see --help\)/);
    expect(() => loadOptions(set, ['--config', file('typo: 1\n')], {})).toThrow(/unknown option\(s\): typo/);
    expect(() => loadOptions(set, ['--config', file('- a\n')], {})).toThrow(/must hold a mapping/);
    expect(() => loadOptions(set, ['--config', file('a: [\n')], {})).toThrow(/not valid YAML/);
    expect(() => loadOptions(set, ['--config', join(dir, 'missing.yaml')], {})).toThrow(/cannot read config file/);
  });

  it('prints --help from the schema: description, default, variable', () => {
    const help = optionsHelp(set, ['Usage: app']);
    expect(help).toContain('  --port <value>\n      where to listen (default 80; env APP_PORT)');
    expect(help).toContain('  --verbose\n      say more (default false; env APP_VERBOSE)');
    expect(help).toContain('  --secretless <value>\n      no variable of its own\n');
    expect(help).toContain('  --config <file>');
  });
});
