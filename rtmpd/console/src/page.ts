import type { Stream } from './api.ts';

/** One screen of the console; main.ts feeds it every poll of the stream list. */
export interface Page {
  readonly element: HTMLElement;
  update(streams: Stream[]): void;
  /** Handles a page-specific key; true when it did. */
  onKey(event: KeyboardEvent): boolean;
  destroy(): void;
}
