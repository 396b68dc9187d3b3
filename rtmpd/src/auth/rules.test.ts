import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';
import { authRulesSchema, compileRule, globToRegExp } from './rules.ts';

describe('auth rules', () => {
  it('come as a list from the config file or as JSON from a flag, with defaults filled in', () => {
    const json = '[{"app":"live","method":"keys","keys":"/etc/keys"},{"method":"open","actions":["play"]}]';
    const fromFlag = parseConfig({ authRules: json }).authRules;
    expect(fromFlag).toEqual([
      { app: 'live', key: '*', actions: ['publish', 'play'], method: 'keys', keys: '/etc/keys' },
      { app: '*', key: '*', actions: ['play'], method: 'open' },
    ]);
    expect(parseConfig({ authRules: JSON.parse(json) as unknown }).authRules).toEqual(fromFlag);
    expect(parseConfig({}).authRules).toEqual([]);
  });

  it('refuse what cannot work, naming the option', () => {
    const bad = (rules: unknown) => () => parseConfig({ authRules: rules });
    expect(bad('[{"method":"keys"')).toThrow(/--auth-rules \(RTMPD_AUTH_RULES\): not valid JSON/);
    expect(bad([{ method: 'keys' }])).toThrow(/--auth-rules/);
    expect(bad([{ method: 'password', app: 'live' }])).toThrow(/--auth-rules/);
    expect(bad([{ method: 'open', app: 'live/x' }])).toThrow(/wildcards/);
    expect(bad([{ method: 'jwt' }])).toThrow(/exactly one of jwksUrl and keyFile/);
    expect(bad([{ method: 'jwt', keyFile: '/k', jwksUrl: 'https://idp/jwks' }])).toThrow(/exactly one of jwksUrl and keyFile/);
    expect(bad([{ method: 'callback', url: 'ftp://x/' }])).toThrow(/--auth-rules/);
    expect(bad([{ method: 'callback', url: 'http://auth/check', timeoutMs: 0 }])).toThrow(/--auth-rules/);
    expect(bad([{ method: 'open', secret: 'x' }])).toThrow(/--auth-rules/);
    // Numbers inside the JSON are JSON numbers: text such as "1e3" is not read as one.
    expect(bad([{ method: 'callback', url: 'http://auth/check', timeoutMs: '1e3' }])).toThrow(/--auth-rules .*timeoutMs/);
    expect(bad([{ method: 'callback', url: 'http://auth/check', cacheSeconds: '0x10' }])).toThrow(/--auth-rules .*cacheSeconds/);
  });

  it('match by action, app pattern and key pattern', () => {
    const [rule] = authRulesSchema.parse([{ method: 'open', app: 'team-*', key: 'cam-??', actions: ['publish'] }]);
    const compiled = compileRule(rule!, 0);
    expect(compiled.matches('publish', 'team-a', 'cam-01')).toBe(true);
    expect(compiled.matches('play', 'team-a', 'cam-01')).toBe(false);
    expect(compiled.matches('publish', 'team-a', 'cam-001')).toBe(false);
    expect(compiled.matches('publish', 'teamx', 'cam-01')).toBe(false);
    // A dot is a literal dot, not "any character".
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });
});
