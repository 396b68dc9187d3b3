// A small line chart of one value over the history window (SVG, no library).
import { h, setText, svg } from './dom.ts';
import { HISTORY_MS } from './history.ts';

const WIDTH = 300;
const HEIGHT = 64;
const MIN_SPAN_MS = 60_000;

export interface Point {
  at: number;
  value: number;
}

export class LineChart {
  readonly element: HTMLElement;
  private readonly line = svg('polyline', { class: 'line', fill: 'none' });
  private readonly area = svg('polygon', { class: 'area' });
  private readonly current = h('span', { class: 'chart-value' });
  private readonly peak = h('span', { class: 'chart-peak' });
  private readonly since = h('span');
  private readonly plot: SVGSVGElement;
  private readonly format: (value: number) => string;

  constructor(title: string, format: (value: number) => string) {
    this.format = format;
    this.plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img' });
    this.plot.append(this.area, this.line);
    this.element = h(
      'figure',
      { class: 'chart' },
      h('figcaption', {}, h('span', { class: 'chart-title' }, title), this.current),
      this.plot,
      h('div', { class: 'chart-axis' }, this.since, this.peak, h('span', {}, 'now')),
    );
  }

  update(points: Point[], now = performance.now()): void {
    const last = points.at(-1);
    setText(this.current, last ? this.format(last.value) : '–');
    const max = Math.max(1, ...points.map((p) => p.value)) * 1.15;
    setText(this.peak, points.length > 0 ? `peak ${this.format(Math.max(...points.map((p) => p.value)))}` : '');
    // The time axis grows with the samples, from one minute up to the whole history.
    const span = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - (points[0]?.at ?? now)));
    setText(this.since, `${Math.round(span / 60_000)} min ago`);
    const x = (at: number) => (WIDTH * (1 - (now - at) / span)).toFixed(1);
    const y = (value: number) => (HEIGHT - (HEIGHT * value) / max).toFixed(1);
    const coords = points.map((p) => `${x(p.at)},${y(p.value)}`).join(' ');
    this.line.setAttribute('points', coords);
    this.area.setAttribute('points', points.length > 0 ? `${x(points[0]!.at)},${HEIGHT} ${coords} ${x(last!.at)},${HEIGHT}` : '');
    this.plot.setAttribute('aria-label', last ? `${this.format(last.value)} now` : 'no samples yet');
  }
}
