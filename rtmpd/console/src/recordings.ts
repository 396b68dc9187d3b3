// A stream's recordings (shown when rtmpd serves the recordings API): when
// each started, how long and how large it is, to play here or download. A
// live stream rtmpd does not record (--recording-enabled false, or a
// recordingRules rule) has no panel unless it was recorded earlier.
import type { Api, Recording, Stream } from './api.ts';
import { h, setText } from './dom.ts';
import { bytes, duration } from './format.ts';

const REFRESH_MS = 30_000;

const recordingPath = (recording: Recording): string => `api/v1/rtmp/recordings/${encodeURIComponent(recording.id)}`;

export class RecordingsPanel {
  readonly element: HTMLElement;
  private readonly rows = h('tbody');
  private readonly note = h('p', { class: 'hint' }, 'Loading…');
  private readonly table: HTMLTableElement;
  /** What the last listing found: how many, or why it failed; undefined before the first answer. */
  private listed: number | string | undefined;
  /** The live stream's recording_state; undefined while it is not live. */
  private state: Stream['recording_state'] | undefined;
  private readonly timer: number;
  private readonly api: Api;
  private readonly streamId: string;
  private readonly onPlay: (url: string) => void;

  constructor(api: Api, streamId: string, onPlay: (url: string) => void) {
    this.api = api;
    this.streamId = streamId;
    this.onPlay = onPlay;
    this.table = h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Started'),
          h('th', {}, 'Duration'),
          h('th', {}, 'Size'),
          h('th', {}, h('span', { class: 'sr' }, 'Actions')),
        ),
      ),
      this.rows,
    );
    this.element = h(
      'section',
      { class: 'panel recordings', 'aria-label': 'Recordings' },
      h('h2', {}, 'Recordings'),
      this.note,
      this.table,
    );
    void this.load();
    this.timer = window.setInterval(() => void this.load(), REFRESH_MS);
  }

  destroy(): void {
    window.clearInterval(this.timer);
  }

  /** The stream's recording_state at each poll (undefined: not live). */
  update(state: Stream['recording_state'] | undefined): void {
    if (state === this.state) return;
    this.state = state;
    this.show();
  }

  /** Hidden while the live stream is not recorded, unless it has recordings; otherwise what the listing found. */
  private show(): void {
    const off = this.state === 'off';
    const found = typeof this.listed === 'number' && this.listed > 0;
    this.element.hidden = off && !found;
    this.table.hidden = !found;
    if (typeof this.listed === 'string') setText(this.note, `Recordings could not be listed: ${this.listed}`);
    else if (this.listed === undefined) setText(this.note, 'Loading…');
    else if (off) setText(this.note, 'Not recorded now: recording is off for this stream on this server. Earlier recordings:');
    else setText(this.note, this.listed === 0 ? 'No recordings of this stream yet.' : '');
  }

  private async load(): Promise<void> {
    let recordings: Recording[];
    try {
      recordings = await this.api.recordings(this.streamId);
    } catch (err) {
      this.listed = (err as Error).message;
      this.show();
      return;
    }
    this.listed = recordings.length;
    this.show();
    this.rows.replaceChildren(
      ...recordings.map((recording) =>
        h(
          'tr',
          {},
          h('td', {}, new Date(recording.start_time).toLocaleString()),
          h('td', {}, duration(recording.duration_seconds)),
          h('td', {}, bytes(recording.size_bytes)),
          h(
            'td',
            { class: 'actions' },
            h('button', { type: 'button', onclick: () => this.onPlay(recordingPath(recording)) }, 'Play'),
            h('a', { href: recordingPath(recording), download: '' }, 'Download'),
          ),
        ),
      ),
    );
  }
}
