import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serializeError } from './logger.ts';

describe('serializeError', () => {
  it("logs an error's type by its name, which the bundle's minifier does not rename as it does its class", () => {
    // What esbuild makes of `class DecodeError extends Error { override name = 'DecodeError' }`.
    const Vt = class extends Error {
      override name = 'DecodeError';
    };
    expect(serializeError(new Vt('ffmpeg exited with 1'))).toMatchObject({ type: 'DecodeError', message: 'ffmpeg exited with 1' });
    expect(serializeError(Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toMatchObject({ type: 'Error', code: 'ENOENT' });
    expect(serializeError('a message logged as err')).toBe('a message logged as err');
  });

  it("names the errors nested in a logged one the same way: an aggregate's, and one a property holds", () => {
    const Vt = class extends Error {
      override name = 'DecodeError';
    };
    const L = class extends Error {
      override name = 'PublishRefused';
    };
    const aggregate = new AggregateError([new Vt('ffmpeg exited with 1'), new Error('timed out')], 'every snapshot failed');
    expect(serializeError(aggregate)).toMatchObject({
      type: 'AggregateError',
      aggregateErrors: [
        { type: 'DecodeError', message: 'ffmpeg exited with 1' },
        { type: 'Error', message: 'timed out' },
      ],
    });
    const holder = Object.assign(new Vt('forward failed'), { refusal: Object.assign(new L('bad key'), { reason: new Vt('inner') }) });
    expect(serializeError(holder)).toMatchObject({
      type: 'DecodeError',
      refusal: { type: 'PublishRefused', message: 'bad key', reason: { type: 'DecodeError', message: 'inner' } },
    });
  });
});

const SRC = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe("rtmpd's error classes", () => {
  it('each set `name` to their own name, which is the type their log lines carry', () => {
    const unnamed = sources(SRC).flatMap((path) => {
      const text = readFileSync(path, 'utf8');
      const classes = [...text.matchAll(/class (\w+) extends \w*Error\b/g)].map((match) => match[1]!);
      return classes.filter((name) => !text.includes(`name = '${name}'`)).map((name) => `${name} (${path.slice(SRC.length + 1)})`);
    });
    expect(unnamed).toEqual([]);
  });
});
