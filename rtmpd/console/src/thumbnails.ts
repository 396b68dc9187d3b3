// Live thumbnails from each stream's snapshot endpoint (the cached JPEG of its
// current keyframe): refreshed every few seconds while the card is on screen,
// at most two at a time (rtmpd decodes two snapshots at once by default).
import type { Api } from './api.ts';

const THUMBNAIL_REFRESH_MS = 4000;
const CONCURRENCY = 2;
const SNAPSHOTS_OFF = 'snapshots are off';

interface Entry {
  img: HTMLImageElement;
  visible: boolean;
  loadedAt: number;
  /** Why there is no picture, for a reason that will not change while the stream lives; the placeholder's text. */
  unavailable?: string;
  objectUrl?: string;
}

export class Thumbnails {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: string[] = [];
  private running = 0;
  /** The streams with a keyframe in the latest poll. */
  private live = new Set<string>();
  private readonly api: Api;
  /** --snapshot-enabled: when off, no snapshot is asked for (each would answer 409). */
  private readonly enabled: boolean;
  private readonly observer = new IntersectionObserver((changes) => {
    for (const change of changes) {
      const entry = [...this.entries.values()].find((e) => e.img === change.target);
      if (entry) entry.visible = change.isIntersecting;
    }
  });

  constructor(api: Api, enabled: boolean) {
    this.api = api;
    this.enabled = enabled;
  }

  /** Shows a stream's thumbnail in `img` (its last picture at once, if there is one) and keeps it fresh. */
  add(streamId: string, img: HTMLImageElement): void {
    const known = this.entries.get(streamId);
    if (known) this.observer.unobserve(known.img);
    const entry: Entry = {
      img,
      visible: true,
      loadedAt: known?.loadedAt ?? -Infinity,
      unavailable: this.enabled ? known?.unavailable : SNAPSHOTS_OFF,
      objectUrl: known?.objectUrl,
    };
    this.entries.set(streamId, entry);
    this.observer.observe(img);
    if (entry.objectUrl) this.show(entry, entry.objectUrl);
    this.markUnavailable(entry);
  }

  /** The last picture of a stream, as an object URL; undefined before the first. */
  latest(streamId: string): string | undefined {
    return this.entries.get(streamId)?.objectUrl;
  }

  /** Stops refreshing a stream's picture but keeps it for the next page that shows the stream. */
  detach(streamId: string): void {
    const entry = this.entries.get(streamId);
    if (!entry) return;
    this.observer.unobserve(entry.img);
    entry.visible = false;
  }

  /** Forgets the streams that ended. */
  forgetAllBut(live: Set<string>): void {
    for (const [id, entry] of this.entries) {
      if (live.has(id)) continue;
      this.observer.unobserve(entry.img);
      if (entry.objectUrl) URL.revokeObjectURL(entry.objectUrl);
      this.entries.delete(id);
    }
  }

  /**
   * Queues the visible thumbnails that are due. Called right after each poll
   * of the stream list, with the ids that list had, so a snapshot is only
   * asked for a stream that was live a moment ago.
   */
  refresh(withKeyframe: Set<string>, now = performance.now()): void {
    this.live = withKeyframe;
    for (const [id, entry] of this.entries) {
      if (!withKeyframe.has(id) || entry.unavailable || !entry.visible || now - entry.loadedAt < THUMBNAIL_REFRESH_MS) continue;
      if (this.queue.includes(id)) continue;
      entry.loadedAt = now;
      this.queue.push(id);
    }
    this.next();
  }

  private next(): void {
    while (this.running < CONCURRENCY && this.queue.length > 0) {
      const id = this.queue.shift()!;
      // A stream that ended while its turn came would only answer 404.
      if (!this.live.has(id)) continue;
      this.running++;
      void this.load(id).finally(() => {
        this.running--;
        this.next();
      });
    }
  }

  private async load(id: string): Promise<void> {
    let result: Blob | number;
    try {
      result = await this.api.snapshot(id);
    } catch {
      return; // unreachable or unauthorized: the stream list's poll reports that
    }
    const entry = this.entries.get(id);
    if (!entry) return;
    if (typeof result === 'number') {
      // 409: snapshots are off (a reload since; the page was told at load); 415: no decoder for this codec.
      // 404 and 503 may pass: try again next round.
      entry.unavailable = result === 409 ? SNAPSHOTS_OFF : result === 415 ? 'no preview for this codec' : undefined;
      this.markUnavailable(entry);
      return;
    }
    const url = URL.createObjectURL(result);
    const previous = entry.objectUrl;
    entry.objectUrl = url;
    await this.show(entry, url);
    if (previous) URL.revokeObjectURL(previous);
  }

  private async show(entry: Entry, url: string): Promise<void> {
    entry.img.src = url;
    await entry.img.decode().catch(() => undefined);
    entry.img.closest('.thumb')?.classList.add('loaded');
  }

  private markUnavailable(entry: Entry): void {
    const thumb = entry.img.closest<HTMLElement>('.thumb');
    if (!thumb) return;
    if (entry.unavailable) thumb.dataset.unavailable = entry.unavailable;
    else delete thumb.dataset.unavailable;
  }
}
