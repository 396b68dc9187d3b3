/** A writer that keeps media until a deadline (TickWriter). */
export interface MergingWriter {
  /** The wheel slot (ms) it waits in, or -1 when it waits in none. */
  mergeSlot: number;
  /** The deadline has come: sends what was kept. */
  flushMerged(now: number): void;
}

/**
 * Writers merging media, each flushed at its own deadline (the interval
 * since its last flush), kept in 1 ms slots. Had every waiting writer been
 * flushed together when the first was due, all would soon share a phase, and
 * every interval would end in one burst of hundreds of writes. Due slots run
 * at the end of every socket read's handling (`run`), and one timer stands
 * for the earliest slot while no read comes. A writer that leaves its slot
 * early (`cancel`: it flushed for another reason) stays in the slot's list
 * until the slot runs, which skips it. A slot's list is counted, not
 * emptied with `length = 0`, which calls into V8's runtime and drops the
 * array's storage for the next add to allocate again (as WriteTick's dirty
 * writers).
 */
export class MergeWheel {
  /**
   * Slot s (ms since the time origin, floored) lists its writers at
   * s % slots.length, the first `slotCounts[s % slots.length]` entries.
   */
  private readonly slots: (MergingWriter | undefined)[][];
  private readonly slotCounts: Uint32Array;
  /** The first slot not yet run. */
  private next = 0;
  /** Writers waiting in a slot. */
  private count = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  /** The slot the timer is set for. */
  private timerSlot = Infinity;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerSlot = Infinity;
    const now = performance.now();
    this.run(now);
    this.afterTimer(now);
    this.arm(now);
  };
  private readonly afterTimer: (now: number) => void;

  /**
   * `spanMs`: the longest wait (the write interval); `afterTimer`: called
   * after the timer ran the due slots (outside any read's handling).
   */
  constructor(spanMs: number, afterTimer: (now: number) => void) {
    this.slots = Array.from({ length: Math.ceil(spanMs) + 2 }, () => []);
    this.slotCounts = new Uint32Array(this.slots.length);
    this.afterTimer = afterTimer;
  }

  /** Writers waiting for their deadline. */
  get waiting(): number {
    return this.count;
  }

  /**
   * `writer` waits until `deadline` (performance.now() time, at most the span
   * after `now`), flushed up to 1 ms early by the slot's rounding. Returns
   * false, with nothing done, when that slot has already run: the caller
   * flushes now. Call `run(now)` first, so no due slot is behind.
   */
  add(writer: MergingWriter, deadline: number, now: number): boolean {
    if (writer.mergeSlot >= 0) return true;
    const slot = Math.floor(deadline);
    if (slot < this.next) return false;
    writer.mergeSlot = slot;
    const index = slot % this.slots.length;
    this.slots[index]![this.slotCounts[index]!++] = writer;
    this.count++;
    if (slot < this.timerSlot) this.setTimer(slot, now);
    return true;
  }

  /** `writer` flushed before its deadline and waits no more. */
  cancel(writer: MergingWriter): void {
    writer.mergeSlot = -1;
    this.count--;
  }

  /** Flushes the writers of every slot up to `now`. */
  run(now: number): void {
    const last = Math.floor(now);
    if (last < this.next) return;
    const slots = this.slots;
    // Each list at most once: after a long pause every slot is due.
    const first = Math.max(this.next, last - slots.length + 1);
    this.next = last + 1;
    for (let slot = first; slot <= last; slot++) {
      const index = slot % slots.length;
      const writers = slots[index]!;
      // Up to the count as it is now: a flush does not add writers to a slot that is running.
      const count = this.slotCounts[index]!;
      this.slotCounts[index] = 0;
      for (let i = 0; i < count; i++) {
        const writer = writers[i]!;
        // Cleared as used, so no closed writer stays referenced.
        writers[i] = undefined;
        // Earlier than `slot`: a pause longer than the wheel's turn; -1 or later: left or moved.
        if (writer.mergeSlot < 0 || writer.mergeSlot > slot) continue;
        writer.mergeSlot = -1;
        this.count--;
        writer.flushMerged(now);
      }
    }
  }

  /** Sets the timer for the earliest slot that a writer still waits in. */
  private arm(now: number): void {
    if (this.count === 0) return;
    const slots = this.slots;
    for (let slot = this.next; slot < this.next + slots.length; slot++) {
      const index = slot % slots.length;
      const writers = slots[index]!;
      for (let i = 0; i < this.slotCounts[index]!; i++) {
        if (writers[i]!.mergeSlot === slot) {
          this.setTimer(slot, now);
          return;
        }
      }
    }
  }

  private setTimer(slot: number, now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerSlot = slot;
    this.timer = setTimeout(this.onTimer, Math.max(1, slot - now));
  }
}
