// Settings per app and key pattern (recordingRules, hlsRules): an ordered
// list in rtmpd's config whose first rule matching a stream overrides the
// global options for it.
import { z } from 'zod';
// The same pattern language as the authorization rules.
import { globToRegExp, jsonList, namePattern } from '../auth/rules.ts';

/** One rule: an app and key pattern and the settings it applies. */
export function streamRule<T extends z.ZodRawShape>(settings: T) {
  return z.object({
    app: namePattern.default('*').describe('app pattern, e.g. live or team-*'),
    key: namePattern.default('*').describe('stream key pattern, e.g. cam-*'),
    ...settings,
  });
}

/** A rule list, read from the config file (a list) or a flag or variable (the same list as JSON); unknown fields are refused. */
export function ruleList<Shape extends z.ZodRawShape>(rule: z.ZodObject<Shape>) {
  return jsonList(rule.strict());
}

/** The first rule whose patterns match app/key; compiled patterns are cached per rule list. */
export function ruleFor<R extends { app: string; key: string }>(rules: readonly R[], app: string, key: string): R | undefined {
  let compiled = compiledRules.get(rules);
  if (!compiled) {
    compiled = rules.map((rule) => ({ app: globToRegExp(rule.app), key: globToRegExp(rule.key) }));
    compiledRules.set(rules, compiled);
  }
  const index = compiled.findIndex((c) => c.app.test(app) && c.key.test(key));
  return index < 0 ? undefined : rules[index];
}

const compiledRules = new WeakMap<readonly object[], { app: RegExp; key: RegExp }[]>();
