import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CrdGate } from './crd-gate.ts';

const log = pino({ level: 'silent' });

describe('CrdGate', () => {
  it('holds the workers back while the CRD is stale, says why once per cause, and lets them go once it is current', async () => {
    const answers = ['lacks spec.a', 'lacks spec.a', new Error('connection refused'), undefined];
    const told: string[] = [];
    const gate = new CrdGate({
      check: async () => {
        const a = answers.shift();
        if (a instanceof Error) throw a;
        return a;
      },
      log,
      retryMs: 1,
      onStale: (why) => told.push(why),
    });
    const problems: (string | undefined)[] = [];
    const waiting = gate.wait();
    for (let i = 0; i < 50 && answers.length; i++) {
      problems.push(gate.problem);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await waiting).toBe(true);
    expect(told).toEqual(['lacks spec.a', 'reading the served RtmpServer schema failed: Error: connection refused']);
    expect(problems).toContain('lacks spec.a');
    expect(gate.problem).toBeUndefined();
  });

  it('logs a failed read of the served schema with its error: type, message and a stack naming the source file', async () => {
    const lines: { msg: string; err?: { type: string; message: string; stack: string } }[] = [];
    const captured = pino(new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) }));
    const answers = [new Error('connection refused'), undefined];
    const gate = new CrdGate({
      check: async () => {
        const a = answers.shift();
        if (a) throw a;
        return a;
      },
      log: captured,
      retryMs: 1,
    });
    expect(await gate.wait()).toBe(true);
    const failed = lines.find((line) => line.msg.startsWith('reading the served RtmpServer schema failed'));
    expect(failed?.err).toMatchObject({ type: 'Error', message: 'connection refused' });
    expect(failed?.err?.stack).toMatch(/crd-gate\.test\.ts:\d+/);
  });

  it('gives up waiting when stopped', async () => {
    const gate = new CrdGate({ check: async () => 'lacks spec.a', log, retryMs: 60_000 });
    const waiting = gate.wait();
    await new Promise((r) => setTimeout(r, 5));
    gate.stop();
    expect(await waiting).toBe(false);
  });

  it('stops at once when stopped while a check is in flight, not after the retry interval', async () => {
    let answer!: (why: string) => void;
    const gate = new CrdGate({ check: () => new Promise((resolve) => (answer = resolve)), log, retryMs: 60_000 });
    const waiting = gate.wait();
    await new Promise((r) => setTimeout(r, 5));
    gate.stop();
    answer('lacks spec.a');
    const late = new Promise((r) => setTimeout(() => r('still waiting after 1 s'), 1_000));
    expect(await Promise.race([waiting, late])).toBe(false);
  });
});
