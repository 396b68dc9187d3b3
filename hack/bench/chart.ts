// The bench's chart: CPU, peak RSS and p99 latency per scenario and server
// as horizontal bars (with every round's CPU as a tick when there were
// several), and RSS over time for soak runs, as one dependency-free SVG.
import type { BenchReport, LoadResult } from './bench.ts';
import type { ServerName } from './servers.ts';

const COLORS: Record<ServerName, string> = { rtmpd: '#1f6fb4', nginx: '#2a9d3c', nms: '#e07b1a' };
const LABELS: Record<ServerName, string> = { rtmpd: 'rtmpd', nginx: 'nginx-rtmp', nms: 'node-media-server' };

interface Metric {
  title: string;
  value: (r: LoadResult) => number;
  /** Other values to mark on the bar (each round's CPU). */
  marks?: (r: LoadResult) => number[];
  format: (v: number) => string;
}

const METRICS: Metric[] = [
  { title: 'CPU, % of one core', value: (r) => r.cpuPercent, marks: (r) => r.cpuRounds ?? [], format: (v) => v.toFixed(1) },
  { title: 'peak RSS, MiB', value: (r) => r.peakRssBytes / 2 ** 20, format: (v) => v.toFixed(0) },
  { title: 'p99 relay latency, ms', value: (r) => r.latency.p99Ms, format: (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0)) },
];

const font = (size = 11): string => `font-family="sans-serif" font-size="${size}"`;
const FONT = font();
const BAR = 9;
const LABEL_WIDTH = 150;
const PANEL_WIDTH = 250;
const PANEL_GAP = 30;

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number): string => (Math.round(v * 10) / 10).toString();

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 5, 10]) if (v <= step * power) return step * power;
  return 10 * power;
}

function legend(servers: ServerName[], y: number): string {
  return servers
    .map((s, i) => {
      const x = LABEL_WIDTH + i * 150;
      return `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${COLORS[s]}"/><text x="${x + 14}" y="${y}" ${FONT}>${LABELS[s]}</text>`;
    })
    .join('');
}

function barPanels(load: LoadResult[], servers: ServerName[], top: number): { svg: string; height: number } {
  const scenarios = [...new Set(load.map((r) => r.scenario))];
  const rowHeight = servers.length * BAR + 8;
  const parts: string[] = [];
  METRICS.forEach((metric, m) => {
    const x0 = LABEL_WIDTH + m * (PANEL_WIDTH + PANEL_GAP);
    const values = load.flatMap((r) => [metric.value(r), ...(metric.marks?.(r) ?? [])]).filter(Number.isFinite);
    const max = niceMax(Math.max(0, ...values));
    const scale = (v: number): number => (Math.max(0, v) / max) * PANEL_WIDTH;
    parts.push(`<text x="${x0}" y="${top - 6}" ${FONT} font-weight="bold">${metric.title}</text>`);
    const bottom = top + scenarios.length * rowHeight;
    for (const f of [0, 0.5, 1]) {
      const x = x0 + f * PANEL_WIDTH;
      parts.push(`<line x1="${num(x)}" y1="${top}" x2="${num(x)}" y2="${bottom}" stroke="#ccc"/>`);
      parts.push(`<text x="${num(x)}" y="${bottom + 12}" ${FONT} text-anchor="middle" fill="#666">${metric.format(f * max)}</text>`);
    }
    scenarios.forEach((scenario, i) => {
      servers.forEach((server, j) => {
        const r = load.find((x) => x.scenario === scenario && x.server === server);
        if (!r) return;
        const y = top + i * rowHeight + j * BAR + 4;
        const v = metric.value(r);
        if (!r.ok || !Number.isFinite(v)) {
          if (!r.ok) parts.push(`<text x="${x0 + 2}" y="${y + BAR - 1}" ${FONT} fill="#b00">failed</text>`);
          return;
        }
        const w = scale(v);
        parts.push(`<rect x="${x0}" y="${y}" width="${num(w)}" height="${BAR - 1}" fill="${COLORS[server]}"/>`);
        let end = w;
        for (const mark of metric.marks?.(r) ?? []) {
          const x = x0 + scale(mark);
          end = Math.max(end, scale(mark));
          parts.push(`<line x1="${num(x)}" y1="${y - 1}" x2="${num(x)}" y2="${y + BAR}" stroke="#000" stroke-width="1"/>`);
        }
        parts.push(`<text x="${num(x0 + end + 3)}" y="${y + BAR - 1}" ${font(9)}>${metric.format(v)}</text>`);
      });
    });
  });
  scenarios.forEach((scenario, i) => {
    const y = top + i * rowHeight + (servers.length * BAR) / 2 + 8;
    parts.push(`<text x="${LABEL_WIDTH - 8}" y="${y}" ${FONT} text-anchor="end">${escape(scenario)}</text>`);
  });
  return { svg: parts.join(''), height: scenarios.length * rowHeight + 20 };
}

/** RSS over the measured window, one line per server, for runs long enough to show a trend. */
function rssPanel(soaks: LoadResult[], top: number, width: number): { svg: string; height: number } {
  const height = 160;
  const x0 = LABEL_WIDTH;
  const maxSeconds = Math.max(...soaks.map((r) => r.rssSeries.at(-1)?.seconds ?? 0));
  const maxMiB = niceMax(Math.max(...soaks.flatMap((r) => r.rssSeries.map((p) => p.bytes / 2 ** 20))));
  const x = (s: number): number => x0 + (s / (maxSeconds || 1)) * width;
  const y = (b: number): number => top + height - (b / 2 ** 20 / maxMiB) * height;
  const parts = [
    `<text x="${x0}" y="${top - 6}" ${FONT} font-weight="bold">RSS over the measured window, MiB (${escape([...new Set(soaks.map((r) => r.scenario))].join(', '))})</text>`,
    `<rect x="${x0}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#ccc"/>`,
    `<text x="${x0 - 6}" y="${top + 10}" ${FONT} text-anchor="end" fill="#666">${maxMiB}</text>`,
    `<text x="${x0 - 6}" y="${top + height}" ${FONT} text-anchor="end" fill="#666">0</text>`,
    `<text x="${x0 + width}" y="${top + height + 12}" ${FONT} text-anchor="end" fill="#666">${Math.round(maxSeconds)} s</text>`,
  ];
  for (const r of soaks) {
    const points = r.rssSeries.map((p) => `${num(x(p.seconds))},${num(y(p.bytes))}`).join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${COLORS[r.server]}" stroke-width="1.5"/>`);
  }
  return { svg: parts.join(''), height: height + 30 };
}

/** The SVG for a report; runs of at least `soakSeconds` also get the RSS-over-time panel. */
export function renderChart(report: BenchReport, soakSeconds = 120): string {
  const load = report.results.filter((r): r is LoadResult => r.type === 'load');
  const servers = report.options.servers.filter((s) => load.some((r) => r.server === s));
  const width = LABEL_WIDTH + METRICS.length * (PANEL_WIDTH + PANEL_GAP) + 20;
  const style = report.options.publisherStyle;
  const { rounds, durationSeconds } = report.options;
  const subtitles = [
    `${report.host.cpus} × ${report.host.cpuModel}, load generator on the same cores; rtmpd at ${report.host.rtmpdCommit}`,
    `publishers: ${style.chunkSize === 'server' ? "the server's" : style.chunkSize}-byte chunks (+c: the scenario's), Nagle ${style.nagle ? 'on' : 'off'}, a socket write per ${style.writes}; ${durationSeconds} s windows${rounds > 1 ? `; median of ${rounds} rounds, ticks mark each round's CPU` : ''}`,
  ];
  const parts = [
    `<text x="10" y="18" ${font(14)} font-weight="bold">make bench, ${escape(report.startedAt.slice(0, 10))}</text>`,
    ...subtitles.map((line, i) => `<text x="10" y="${34 + i * 14}" ${FONT} fill="#444">${escape(line)}</text>`),
    legend(servers, 70),
  ];
  let y = 100;
  const bars = barPanels(load, servers, y);
  parts.push(bars.svg);
  y += bars.height + 30;
  const soaks = load.filter((r) => r.ok && r.durationSeconds >= soakSeconds && r.rssSeries.length > 1);
  if (soaks.length > 0) {
    const panel = rssPanel(soaks, y, width - LABEL_WIDTH - 20);
    parts.push(panel.svg);
    y += panel.height + 10;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}"><rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>\n`;
}
