// A stream's page: the player (HTTP-FLV or HLS), its live health beside it,
// the URLs to publish and play it, and its recordings where rtmpd has them.
import { httpFlvPath, type Api, type ConsoleSettings, type Stream } from './api.ts';
import { LineChart } from './chart.ts';
import { copyRow } from './copy.ts';
import { h, setText } from './dom.ts';
import { bitrate, bytes, channels, codecName, duration, fps, resolution, uptimeSeconds } from './format.ts';
import { ForwardsList } from './forwards.ts';
import type { History } from './history.ts';
import type { Page } from './page.ts';
import { play, type Playback, type Protocol } from './playback.ts';
import { RecordingsPanel } from './recordings.ts';
import type { Thumbnails } from './thumbnails.ts';
import { streamUrls } from './urls.ts';

const PROTOCOL_LABELS: Record<Protocol, string> = { 'http-flv': 'HTTP-FLV', hls: 'HLS' };

export class PlayerPage implements Page {
  readonly element: HTMLElement;
  private readonly api: Api;
  private readonly settings: ConsoleSettings;
  private readonly history: History;
  private readonly streamId: string;
  private readonly video = h('video', { controls: true, muted: true, autoplay: true, playsinline: true, 'aria-label': 'Live video' });
  private readonly state = h('p', { class: 'player-state', role: 'status' });
  private readonly error = h('p', { class: 'player-error', role: 'alert', hidden: true });
  private readonly protocols = h('fieldset', { class: 'protocols' }, h('legend', {}, 'Play over'));
  private readonly urls = h('dl', { class: 'urls' });
  private readonly tiles = new Map<string, HTMLElement>();
  private readonly tileList = h('dl', { class: 'tiles' });
  private readonly forwards = new ForwardsList();
  private readonly bitrateChart = new LineChart('Bitrate', bitrate);
  private readonly fpsChart = new LineChart('Frame rate', (v) => `${v.toFixed(1)} fps`);
  private readonly uptime = h('span', { class: 'uptime' });
  private readonly recordings?: RecordingsPanel;
  private readonly playerTimer: number;
  private stream?: Stream;
  private protocol: Protocol = 'http-flv';
  /** The player in charge of the video element, if any; each change waits for the previous one. */
  private playback: Promise<Playback | void> = Promise.resolve();
  private shownUrls = '';

  constructor(api: Api, settings: ConsoleSettings, history: History, thumbnails: Thumbnails, streamId: string) {
    this.api = api;
    this.settings = settings;
    this.history = history;
    this.streamId = streamId;
    const [app, ...key] = streamId.replace(/^rtmp\//, '').split('/');
    if (settings.recordings) this.recordings = new RecordingsPanel(api, streamId, (url) => void this.playRecording(url));
    this.element = h(
      'section',
      { class: 'player-page' },
      h(
        'div',
        { class: 'player-head' },
        h('a', { class: 'back', href: '#/' }, '← All streams'),
        h('h1', { class: 'title', tabindex: -1 }, h('span', { class: 'app' }, `${app}/`), h('strong', {}, key.join('/'))),
        h('span', { class: 'badge' }, h('span', { class: 'live' }, 'LIVE'), this.uptime),
      ),
      h(
        'div',
        { class: 'player-layout' },
        h(
          'div',
          { class: 'player-main' },
          h('div', { class: 'video-wrap' }, this.video),
          h('div', { class: 'player-bar' }, this.protocols, this.state),
          this.error,
          h('section', { class: 'panel' }, h('h2', {}, 'Publish and play'), this.urls),
          this.recordings?.element,
        ),
        h(
          'aside',
          { class: 'stats', 'aria-label': 'Stream health' },
          h('h2', {}, 'Health'),
          this.tileList,
          this.forwards.element,
          this.bitrateChart.element,
          this.fpsChart.element,
        ),
      ),
    );
    // The grid's last picture of the stream stands in until the first frame plays.
    const poster = thumbnails.latest(streamId);
    if (poster) this.video.poster = poster;
    this.playerTimer = window.setInterval(() => this.showPlayerState(), 1000);
  }

  update(streams: Stream[]): void {
    const stream = streams.find((s) => s.stream_id === this.streamId);
    const wasLive = this.stream !== undefined;
    this.stream = stream;
    this.element.classList.toggle('ended', !stream);
    this.recordings?.update(stream?.recording_state);
    if (!stream) {
      if (wasLive) void this.stop();
      setText(this.state, 'Not live: the stream has ended or has not started. Playback starts when it is published.');
      return;
    }
    if (!wasLive) this.start();
    this.showProtocols(stream);
    this.showUrls(stream);
    this.showTiles(stream);
    this.forwards.update(stream.forwards);
    const samples = this.history.of(stream.stream_id);
    this.bitrateChart.update(samples.map((s) => ({ at: s.at, value: s.kbps })));
    this.fpsChart.update(samples.flatMap((s) => (s.fps === null ? [] : [{ at: s.at, value: s.fps }])));
    setText(this.uptime, duration(uptimeSeconds(stream)));
  }

  onKey(event: KeyboardEvent): boolean {
    if (event.key !== 'Escape') return false;
    location.hash = '#/';
    return true;
  }

  destroy(): void {
    window.clearInterval(this.playerTimer);
    this.recordings?.destroy();
    void this.stop();
  }

  /** Starts live playback over the chosen protocol once the previous player has let go of the video element. */
  private start(): void {
    const stream = this.stream!;
    if (this.protocol === 'hls' && !stream.hls_url) this.protocol = 'http-flv';
    this.error.hidden = true;
    const options = {
      video: this.video,
      url: this.protocol === 'hls' ? stream.hls_url! : httpFlvPath(stream),
      headers: this.api.headers(),
      hasAudio: stream.audio !== null,
      hasVideo: stream.video !== null,
      onError: (message: string) => {
        this.error.textContent = message;
        this.error.hidden = false;
      },
    };
    const protocol = this.protocol;
    this.playback = this.playback.then((previous) => {
      previous?.destroy();
      this.video.removeAttribute('src'); // a recording may have been playing
      return play(protocol, options).catch((err: unknown) => options.onError(`The player could not start: ${String(err)}`));
    });
  }

  /** Ends live playback; resolves once the player has let go of the video element. */
  private async stop(): Promise<void> {
    this.playback = this.playback.then((previous) => void previous?.destroy());
    await this.playback;
  }

  /** Plays a recorded file in place of the live stream; choosing a protocol goes live again. */
  private async playRecording(url: string): Promise<void> {
    await this.stop();
    this.protocols.querySelectorAll('input').forEach((input) => (input.checked = false));
    this.video.src = url;
    void this.video.play().catch(() => undefined);
  }

  private switchTo(protocol: Protocol): void {
    this.protocol = protocol;
    if (this.stream) this.start();
  }

  private showProtocols(stream: Stream): void {
    const offered: Protocol[] = stream.hls_url ? ['http-flv', 'hls'] : ['http-flv'];
    const shown = [...this.protocols.querySelectorAll('input')].map((input) => input.value);
    if (shown.join() === offered.join()) return;
    this.protocols.querySelectorAll('label').forEach((label) => label.remove());
    for (const protocol of offered) {
      const input = h('input', { type: 'radio', name: 'protocol', value: protocol, checked: protocol === this.protocol });
      input.addEventListener('change', () => this.switchTo(protocol));
      this.protocols.append(h('label', {}, input, PROTOCOL_LABELS[protocol]));
    }
  }

  private showUrls(stream: Stream): void {
    const urls = streamUrls(stream, this.settings);
    const signature = JSON.stringify(urls);
    if (signature === this.shownUrls) return;
    this.shownUrls = signature;
    this.urls.replaceChildren(...urls.flatMap(copyRow));
  }

  private showTiles(stream: Stream): void {
    const samples = this.history.of(stream.stream_id);
    const measuredFps = samples.at(-1)?.fps;
    const video = stream.video;
    const audio = stream.audio;
    const players = [`RTMP ${stream.players.rtmp}`, `HTTP-FLV ${stream.players.http_flv}`];
    if (stream.players.hls !== undefined) players.push(`HLS ${stream.players.hls}`);
    const tiles: [id: string, label: string, value: string, title?: string][] = [
      ['bitrate', 'Bitrate', bitrate(stream.bitrate_kbps)],
      ['fps', 'Frame rate', fps(measuredFps ?? video?.fps) ?? '–', video?.fps ? `encoder declares ${fps(video.fps)}` : undefined],
      ['resolution', 'Resolution', resolution(stream) ?? '–'],
      ['video', 'Video', video ? [codecName(video.codec), video.profile, video.level].filter(Boolean).join(' ') : 'none'],
      [
        'audio',
        'Audio',
        audio
          ? [codecName(audio.codec), audio.profile, audio.sample_rate && `${audio.sample_rate / 1000} kHz`, channels(audio.channels)]
              .filter(Boolean)
              .join(' ')
          : 'none',
      ],
      ['players', `Players (${stream.players.total})`, players.join(' · ')],
      [
        'dropped',
        'Frames skipped',
        String(stream.dropped_frames),
        'not sent to players that fell behind (each skipped to the next keyframe)',
      ],
      // The address comes only with an API token.
      [
        'publisher',
        'Publisher',
        `${stream.publisher.protocol.toUpperCase()}${stream.publisher.remote_address ? ` from ${stream.publisher.remote_address}` : ''}`,
      ],
      ['recording', 'Recording', stream.recording ? 'on' : 'off'],
      ['received', 'Received', bytes(stream.bytes_in)],
    ];
    if (stream.owner) tiles.push(['owner', 'Pod', stream.owner.pod]);
    for (const [id, label, value, title] of tiles) {
      let tile = this.tiles.get(id);
      if (!tile) {
        tile = h('dd', { 'data-stat': id });
        this.tiles.set(id, tile);
        this.tileList.append(h('div', { class: 'tile' }, h('dt', {}, label), tile));
      }
      tile.previousElementSibling!.textContent = label;
      setText(tile, value);
      if (title) tile.title = title;
    }
  }

  private showPlayerState(): void {
    if (!this.stream) return;
    const video = this.video;
    const quality = video.getVideoPlaybackQuality();
    const buffered = video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) - video.currentTime : 0;
    const status = video.paused ? 'paused' : video.readyState >= 3 ? 'playing' : 'buffering';
    setText(
      this.state,
      `${PROTOCOL_LABELS[this.protocol]} ${status} · ${buffered.toFixed(1)} s buffered · ${quality.totalVideoFrames} frames shown, ${quality.droppedVideoFrames} dropped here`,
    );
  }
}
