// The start page: every live stream as a card with a moving thumbnail and its
// health at a glance. Cards are links to the stream's player page.
import type { ConsoleSettings, Stream } from './api.ts';
import { h, setText } from './dom.ts';
import { bitrate, codecName, duration, fps, plural, resolution, uptimeSeconds } from './format.ts';
import { fillForwardsBadge } from './forwards.ts';
import type { Page } from './page.ts';
import { publishUrl, securePublishUrl } from './urls.ts';
import type { Thumbnails } from './thumbnails.ts';

interface Card {
  root: HTMLAnchorElement;
  uptime: HTMLElement;
  video: HTMLElement;
  rates: HTMLElement;
  owner: HTMLElement;
  recording: HTMLElement;
  forwards: HTMLElement;
}

const streamHref = (streamId: string): string => `#/stream/${encodeURIComponent(streamId)}`;

export class GridPage implements Page {
  readonly element: HTMLElement;
  private readonly cards = new Map<string, Card>();
  private readonly list = h('ul', { class: 'grid', 'aria-label': 'Live streams' });
  private readonly empty: HTMLElement;
  private readonly filter = h('input', {
    type: 'search',
    class: 'filter',
    placeholder: 'Filter by app or key  ( / )',
    'aria-label': 'Filter streams by app or key',
  });
  private readonly thumbnails: Thumbnails;
  private streams: Stream[] = [];

  constructor(settings: ConsoleSettings, thumbnails: Thumbnails) {
    this.thumbnails = thumbnails;
    const example = publishUrl(settings, 'live', 'test123');
    const overTls = securePublishUrl(settings, 'live');
    this.empty = h(
      'div',
      { class: 'empty', hidden: true },
      h('h2', {}, 'No live streams'),
      h(
        'p',
        {},
        'Push one with OBS (Server ',
        h('code', {}, publishUrl(settings, 'live')),
        ...(overTls ? [' or, over TLS, ', h('code', {}, overTls)] : []),
        ', Stream Key ',
        h('code', {}, 'test123'),
        ') or FFmpeg:',
      ),
      h(
        'pre',
        {},
        `ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \\\n  -c:v libx264 -preset veryfast -tune zerolatency -g 60 -c:a aac -f flv ${example}`,
      ),
    );
    this.filter.addEventListener('input', () => this.applyFilter());
    this.element = h(
      'section',
      { class: 'grid-page' },
      h('div', { class: 'toolbar' }, h('h1', { class: 'title', tabindex: -1 }, 'Live streams'), this.filter),
      this.list,
      this.empty,
    );
  }

  update(streams: Stream[]): void {
    this.streams = streams;
    const seen = new Set<string>();
    for (const stream of streams) {
      seen.add(stream.stream_id);
      let card = this.cards.get(stream.stream_id);
      if (!card) {
        card = this.createCard(stream);
        this.cards.set(stream.stream_id, card);
      }
      this.fill(card, stream);
    }
    for (const [id, card] of this.cards) {
      if (seen.has(id)) continue;
      card.root.parentElement?.remove();
      this.cards.delete(id);
    }
    // Keep the list in the API's order (by app and key); move only what is out of place.
    streams.forEach((stream, index) => {
      const item = this.cards.get(stream.stream_id)!.root.parentElement!;
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] ?? null);
    });
    this.applyFilter();
    this.thumbnails.refresh(new Set(streams.filter((s) => s.keyframes > 0).map((s) => s.stream_id)));
  }

  /** `/` focuses the filter, as in most dashboards. */
  onKey(event: KeyboardEvent): boolean {
    if (event.key !== '/' || document.activeElement === this.filter) return false;
    this.filter.focus();
    return true;
  }

  destroy(): void {
    for (const id of this.cards.keys()) this.thumbnails.detach(id);
  }

  private applyFilter(): void {
    const words = this.filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const stream of this.streams) {
      const name = `${stream.app}/${stream.key} ${stream.owner?.pod ?? ''}`.toLowerCase();
      const visible = words.every((word) => name.includes(word));
      this.cards.get(stream.stream_id)!.root.parentElement!.hidden = !visible;
      if (visible) shown++;
    }
    this.empty.hidden = this.streams.length > 0;
    this.list.dataset.filtered = String(shown < this.streams.length);
  }

  private createCard(stream: Stream): Card {
    const img = h('img', { alt: `Current picture of ${stream.app}/${stream.key}`, width: 320, height: 180, decoding: 'async' });
    const card: Card = {
      root: h('a', { class: 'card', href: streamHref(stream.stream_id), 'data-stream-id': stream.stream_id }),
      uptime: h('span', { class: 'uptime', title: 'Live for' }),
      video: h('span', { class: 'facts' }),
      rates: h('span', { class: 'facts' }),
      owner: h('span', { class: 'owner' }),
      recording: h('span', { class: 'rec', title: 'Recording' }, 'REC'),
      forwards: h('span', { class: 'forwarded' }),
    };
    card.root.append(
      h('span', { class: 'thumb' }, img, h('span', { class: 'live' }, 'LIVE'), card.uptime, card.recording, card.forwards),
      h(
        'span',
        { class: 'meta' },
        h('span', { class: 'name' }, h('span', { class: 'app' }, `${stream.app}/`), h('strong', {}, stream.key)),
        card.video,
        card.rates,
        card.owner,
      ),
    );
    this.list.append(h('li', {}, card.root));
    // In the document before the thumbnail loader looks for its frame.
    this.thumbnails.add(stream.stream_id, img);
    return card;
  }

  private fill(card: Card, stream: Stream): void {
    setText(card.uptime, duration(uptimeSeconds(stream)));
    const video = stream.video;
    const videoFacts = video ? [codecName(video.codec), resolution(stream), fps(video.fps)] : ['audio only'];
    if (stream.audio) videoFacts.push(codecName(stream.audio.codec));
    setText(card.video, videoFacts.filter(Boolean).join(' · '));
    setText(card.rates, `${bitrate(stream.bitrate_kbps)} · ${plural(stream.players.total, 'player')}`);
    setText(card.owner, stream.owner ? `pod ${stream.owner.pod}` : '');
    card.owner.hidden = !stream.owner;
    card.recording.hidden = !stream.recording;
    fillForwardsBadge(card.forwards, stream.forwards);
  }
}
