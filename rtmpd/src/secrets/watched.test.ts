import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Watched } from './watched.ts';

/** A Watched over a text the test sets (undefined: unreadable), parsed as a number (anything else is refused). */
async function watchedText(initial: string) {
  const file: { text: string | undefined } = { text: initial };
  const errors: string[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        const { msg } = JSON.parse(line) as { msg: string };
        if (msg.includes('not reloaded')) errors.push(msg);
      },
    },
  );
  const watched = await Watched.open({
    label: 'test: number',
    read: () => (file.text === undefined ? Promise.reject(new Error('ENOENT')) : Promise.resolve(file.text)),
    textOf: (text) => text,
    parse: (text) => {
      if (!/^\d+$/.test(text)) throw new Error(`not a number: ${text}`);
      return Number(text);
    },
    logFields: () => ({}),
    logger,
    intervalMs: 3_600_000,
  });
  return { file, errors, watched };
}

describe('Watched', () => {
  it('reports a failure once however many polls read it, and a new failure again', async () => {
    const { file, errors, watched } = await watchedText('1');
    try {
      // the kubelet removed the file meanwhile: unreadable at every poll
      file.text = undefined;
      for (let i = 0; i < 3; i++) await watched.poll();
      expect(watched.reloads.error).toBe(1);
      expect(errors).toHaveLength(1);
      file.text = 'one';
      await watched.poll();
      expect(watched.reloads.error).toBe(2);
      expect(errors).toHaveLength(2);
      expect(watched.value).toBe(1);
    } finally {
      watched.close();
    }
  });
});
