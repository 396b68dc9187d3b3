// A stream's recordings (shown when rtmpd serves the recordings API): when
// each started, how long and how large it is, to play here or download.
import type { Api, Recording } from './api.ts';
import { h } from './dom.ts';
import { bytes, duration } from './format.ts';

const REFRESH_MS = 30_000;

const recordingPath = (recording: Recording): string => `api/v1/rtmp/recordings/${encodeURIComponent(recording.id)}`;

export class RecordingsPanel {
  readonly element: HTMLElement;
  private readonly rows = h('tbody');
  private readonly note = h('p', { class: 'hint' }, 'Loading…');
  private readonly timer: number;
  private readonly api: Api;
  private readonly streamId: string;
  private readonly onPlay: (url: string) => void;

  constructor(api: Api, streamId: string, onPlay: (url: string) => void) {
    this.api = api;
    this.streamId = streamId;
    this.onPlay = onPlay;
    this.element = h(
      'section',
      { class: 'panel recordings' },
      h('h2', {}, 'Recordings'),
      this.note,
      h(
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
      ),
    );
    void this.load();
    this.timer = window.setInterval(() => void this.load(), REFRESH_MS);
  }

  destroy(): void {
    window.clearInterval(this.timer);
  }

  private async load(): Promise<void> {
    let recordings: Recording[];
    try {
      recordings = await this.api.recordings(this.streamId);
    } catch (err) {
      this.note.textContent = `Recordings could not be listed: ${(err as Error).message}`;
      return;
    }
    this.note.textContent = recordings.length === 0 ? 'No recordings of this stream yet.' : '';
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
