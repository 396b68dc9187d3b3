// The command side the two RTMP test clients share (rtmp-client.ts, and the
// bench's hack/bench/rtmp-peer.ts, which writes its own chunks to send as
// encoders do): transaction ids, the calls waiting for their _result, the
// wait for the next onStatus, and the time limit on each step.
import type { AmfObject } from '../../src/rtmp/wire/amf-values.ts';
import { isObject, type Command } from '../../src/rtmp/wire/commands.ts';

interface Pending {
  resolve: (cmd: Command) => void;
  reject: (err: Error) => void;
}

export class RtmpCalls {
  private lastTransaction = 1;
  private readonly pending = new Map<number, Pending>();
  /** Takes the next onStatus, or what ends the wait when the connection ends. */
  private statusWaiter: ((info: AmfObject | Error) => void) | undefined;
  private readonly refusal: (info: AmfObject | undefined) => Error;

  /** `refusal` makes the error an _error answer rejects its call with, from the answer's info object if it has one. */
  constructor(refusal: (info: AmfObject | undefined) => Error) {
    this.refusal = refusal;
  }

  /** A transaction id for a command no answer is waited for. */
  transaction(): number {
    return ++this.lastTransaction;
  }

  /** A transaction id, and the answer to the command sent with it: its _result, or its _error as a rejection. */
  call(): { id: number; answer: Promise<Command> } {
    const id = this.transaction();
    return { id, answer: new Promise<Command>((resolve, reject) => this.pending.set(id, { resolve, reject })) };
  }

  /** Hands a command from the server to the call or the status wait it answers. */
  received(cmd: Command): void {
    if (cmd.name === '_result' || cmd.name === '_error') {
      const pending = this.pending.get(cmd.transactionId);
      if (!pending) return;
      this.pending.delete(cmd.transactionId);
      if (cmd.name === '_result') pending.resolve(cmd);
      else pending.reject(this.refusal(cmd.args.find(isObject)));
    } else if (cmd.name === 'onStatus') {
      this.statusWaiter?.(cmd.args.find(isObject) ?? Object.create(null));
    }
  }

  /** Resolves with the next onStatus that `accept` takes; an error-level status always ends the wait. */
  nextStatus(accept: (info: AmfObject) => boolean = () => true): Promise<AmfObject> {
    return new Promise((resolve, reject) => {
      this.statusWaiter = (info) => {
        if (info instanceof Error) reject(info);
        else if (info.level !== 'error' && !accept(info)) return;
        else resolve(info);
        this.statusWaiter = undefined;
      };
    });
  }

  /** The connection ended: the waiting calls reject with `err`; a status wait ends with `status` (rejects if it is an Error). */
  end(err: Error, status: AmfObject | Error = err): void {
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
    this.statusWaiter?.(status);
  }
}

/** `promise`, or a rejection naming the step once `timeoutMs` have passed. */
export function withinTime<T>(promise: Promise<T>, what: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`rtmp ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
