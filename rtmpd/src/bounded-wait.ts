/** What a bounded wait answers when nothing settles it: its time ran out, or its signal aborted (or had already). */
export interface WaitOutcomes<T> {
  timedOut: T;
  aborted: T;
}

/** Hands `settle` to whatever announces the awaited event; returns how to take it back. */
export type Listen<T> = (settle: (value: T) => void) => () => void;

/**
 * Waits at most `ms` for `listen`'s event, unless `signal` aborts first. The
 * first outcome wins; by the time the promise resolves, whichever it was
 * (settled, timed out, aborted), the timer, the abort listener and `listen`'s
 * registration are gone, so a wait that ended holds nothing alive. An already
 * aborted signal never fires again: it answers `aborted` without listening.
 */
export function boundedWait<T>(ms: number, signal: AbortSignal | undefined, outcomes: WaitOutcomes<T>, listen?: Listen<T>): Promise<T> {
  if (signal?.aborted) return Promise.resolve(outcomes.aborted);
  return new Promise((resolve) => {
    let settled = false;
    // Filled once `listen` returns; settle may run before that, from inside `listen`.
    const registration: { undo: (() => void) | undefined } = { undo: undefined };
    const settle = (value: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      registration.undo?.();
      resolve(value);
    };
    const onAbort = (): void => settle(outcomes.aborted);
    // Callers pass what is left of a deadline, which may have passed already: Node warns for a negative delay.
    const timer = setTimeout(() => settle(outcomes.timedOut), Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
    registration.undo = listen?.(settle);
    if (settled) registration.undo?.();
  });
}

/** Resolves after `ms`, or at once when `signal` aborts (or had). */
export const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  boundedWait(ms, signal, { timedOut: undefined, aborted: undefined });
