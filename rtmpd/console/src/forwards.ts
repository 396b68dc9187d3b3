// A stream's forwards (forwardRules), shown with its health: where each goes
// (rtmpd redacts the key), its state, what it sent, and, while it is not
// sending, why its last connection failed. The grid's cards show how many
// there are and how many fail (fillForwardsBadge).
import type { Stream } from './api.ts';
import { h, setText } from './dom.ts';
import { bytes, plural } from './format.ts';

type Forward = Stream['forwards'][number];

/** Not sending, and its last connection failed: in backoff or trying again. */
const isFailing = (forward: Forward): boolean => forward.state !== 'sending' && forward.last_error !== null;

/** A card's badge: "→ 2", or "→ 2 · 1 failing" marked failing; hidden when the stream is forwarded nowhere. */
export function fillForwardsBadge(badge: HTMLElement, forwards: readonly Forward[]): void {
  const failing = forwards.filter(isFailing).length;
  badge.hidden = forwards.length === 0;
  badge.dataset.failing = String(failing > 0);
  setText(badge, failing > 0 ? `→ ${forwards.length} · ${failing} failing` : `→ ${forwards.length}`);
  badge.title = `Forwarded to ${plural(forwards.length, 'destination')}${failing > 0 ? `, ${failing} failing` : ''}`;
}

interface Row {
  item: HTMLElement;
  destination: HTMLElement;
  state: HTMLElement;
  sent: HTMLElement;
  error: HTMLElement;
}

export class ForwardsList {
  readonly element: HTMLElement;
  private readonly list = h('ul', { class: 'forwards' });
  private readonly rows: Row[] = [];

  constructor() {
    this.element = h('section', { class: 'forwards-section', 'aria-label': 'Forwards', hidden: true }, h('h2', {}, 'Forwards'), this.list);
  }

  /** One row per forward, in the API's order (the rules'); rows are kept and their text set, so polling does not churn the DOM. */
  update(forwards: readonly Forward[]): void {
    this.element.hidden = forwards.length === 0;
    for (const row of this.rows.splice(forwards.length)) row.item.remove();
    forwards.forEach((forward, index) => this.fill(this.rows[index] ?? this.addRow(), forward));
  }

  private addRow(): Row {
    const destination = h('span', { class: 'destination' });
    const state = h('span', { class: 'state' });
    const sent = h('span', { class: 'facts' });
    const error = h('span', { class: 'forward-error' });
    const row: Row = {
      item: h('li', { class: 'forward' }, destination, h('span', {}, state, ' ', sent), error),
      destination,
      state,
      sent,
      error,
    };
    this.list.append(row.item);
    this.rows.push(row);
    return row;
  }

  private fill(row: Row, forward: Forward): void {
    row.item.dataset.state = forward.state;
    setText(row.destination, forward.destination);
    setText(row.state, forward.state);
    setText(row.sent, `${bytes(forward.bytes)} sent · ${plural(forward.attempts, 'connection')}`);
    const error = forward.state === 'sending' ? null : forward.last_error;
    setText(row.error, error ?? '');
    row.error.hidden = error === null;
  }
}
