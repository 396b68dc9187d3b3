// The console's entry: polls the stream list, keeps the history the charts
// draw, and shows the grid (#/) or one stream's page (#/stream/<id>).
import './styles.css';
import { Api, Unauthorized, type ConsoleSettings, type Stream } from './api.ts';
import { askForToken } from './auth.ts';
import { setText } from './dom.ts';
import { bitrate, plural } from './format.ts';
import { GridPage } from './grid.ts';
import { History } from './history.ts';
import type { Page } from './page.ts';
import { PlayerPage } from './player.ts';
import { initTheme } from './theme.ts';
import { Thumbnails } from './thumbnails.ts';

const POLL_MS = 2000;

const api = new Api();
const history = new History();
const view = document.getElementById('view')!;
const summary = document.getElementById('summary')!;
const banner = document.getElementById('banner')!;
let settings: ConsoleSettings;
let page: Page | undefined;
let streams: Stream[] = [];

function route(event?: HashChangeEvent): void {
  page?.destroy();
  const match = /^#\/stream\/(.+)$/.exec(location.hash);
  page = match ? new PlayerPage(api, settings, history, thumbnails, decodeURIComponent(match[1]!)) : new GridPage(settings, thumbnails);
  view.replaceChildren(page.element);
  page.update(streams);
  // After navigating, focus moves to the new page's heading, where a screen reader continues.
  if (event) page.element.querySelector<HTMLElement>('.title')?.focus({ preventScroll: true });
  document.title = match ? `${decodeURIComponent(match[1]!).replace(/^rtmp\//, '')} · rtmpd` : 'rtmpd console';
}

/** Runs an API call, asking for a token and trying again whenever rtmpd wants one. */
async function authorized<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof Unauthorized)) throw err;
      api.setToken(await askForToken(err.message));
    }
  }
}

function showUnreachable(err: unknown): void {
  setText(banner, `rtmpd does not answer (${(err as Error).message}); retrying…`);
  banner.hidden = false;
}

async function poll(): Promise<void> {
  try {
    streams = await authorized(() => api.streams());
    history.record(streams);
    thumbnails.forgetAllBut(new Set(streams.map((s) => s.stream_id)));
    page?.update(streams);
    showSummary();
    banner.hidden = true;
  } catch (err) {
    showUnreachable(err);
  }
}

function showSummary(): void {
  const players = streams.reduce((sum, s) => sum + s.players.total, 0);
  const kbps = streams.reduce((sum, s) => sum + s.bitrate_kbps, 0);
  setText(summary, `${plural(streams.length, 'live stream')} · ${plural(players, 'player')} · ${bitrate(kbps)} in`);
}

/** Polls while the page is visible; a hidden tab costs the server nothing. */
function schedule(): void {
  window.setTimeout(async () => {
    if (document.visibilityState === 'visible') await poll();
    schedule();
  }, POLL_MS);
}

document.addEventListener('keydown', (event) => {
  const typing = event.target instanceof HTMLInputElement && event.key !== 'Escape';
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (page?.onKey(event)) event.preventDefault();
});
initTheme(document.getElementById('theme') as HTMLButtonElement);
for (;;) {
  try {
    settings = await authorized(() => api.settings());
    break;
  } catch (err) {
    showUnreachable(err);
    await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
  }
}
const thumbnails = new Thumbnails(api, settings.snapshots);
// Only now does anything draw a view: a deep link's hash can change while the settings load.
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') void poll();
});
route();
await poll();
schedule();
