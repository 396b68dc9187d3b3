// The two ways the console plays a stream in a <video>: HTTP-FLV through
// mpegts.js (Media Source Extensions) and HLS through hls.js, or natively
// where the browser plays HLS itself (Safari). Each library is its own chunk,
// fetched the first time it is needed.

export type Protocol = 'http-flv' | 'hls';

export interface Playback {
  destroy(): void;
}

export interface PlaybackOptions {
  video: HTMLVideoElement;
  url: string;
  headers: Record<string, string>;
  hasAudio: boolean;
  hasVideo: boolean;
  onError(message: string): void;
}

export function play(protocol: Protocol, options: PlaybackOptions): Promise<Playback> {
  return protocol === 'hls' ? playHls(options) : playHttpFlv(options);
}

async function playHttpFlv({ video, url, headers, hasAudio, hasVideo, onError }: PlaybackOptions): Promise<Playback> {
  const { default: mpegts } = await import('mpegts.js');
  // Its own warnings and errors arrive through the ERROR event below.
  mpegts.LoggingControl.applyConfig({ enableAll: false });
  if (!mpegts.getFeatureList().mseLivePlayback) {
    onError('This browser cannot play live HTTP-FLV (no Media Source Extensions). Try HLS or the RTMP URL in a player.');
    return { destroy: () => undefined };
  }
  const player = mpegts.createPlayer(
    { type: 'flv', isLive: true, url, hasAudio, hasVideo },
    { enableStashBuffer: false, liveBufferLatencyChasing: true, headers },
  );
  player.on(mpegts.Events.ERROR, (type: string, detail: string) => onError(`HTTP-FLV playback stopped: ${type} (${detail})`));
  player.attachMediaElement(video);
  player.load();
  void video.play().catch(() => undefined); // autoplay may wait for a click; the controls are there
  return {
    destroy: () => {
      player.pause();
      player.unload();
      player.detachMediaElement();
      player.destroy();
    },
  };
}

async function playHls({ video, url, headers, onError }: PlaybackOptions): Promise<Playback> {
  const { default: Hls } = await import('hls.js/light');
  if (!Hls.isSupported()) {
    if (!video.canPlayType('application/vnd.apple.mpegurl')) {
      onError('This browser cannot play HLS.');
      return { destroy: () => undefined };
    }
    video.src = url;
    void video.play().catch(() => undefined);
    return { destroy: () => video.removeAttribute('src') };
  }
  const hls = new Hls({
    enableWorker: false,
    lowLatencyMode: true,
    xhrSetup: (xhr) => {
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    },
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onError(`HLS playback stopped: ${data.type} (${data.details})`);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  void video.play().catch(() => undefined);
  return { destroy: () => hls.destroy() };
}
