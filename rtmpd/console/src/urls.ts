// The addresses a person copies from the console. RTMP goes to the host the
// page was loaded from, on the RTMP port rtmpd listens on.
import { absolute, httpFlvPath, snapshotPath, type ConsoleSettings, type Stream } from './api.ts';

export interface CopyableUrl {
  id: string;
  label: string;
  value: string;
  hint?: string;
}

const host = (): string => (location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname);

/** `rtmp://host:1935/app`, or with the key: the URL FFmpeg publishes to and RTMP players play from. */
export const publishUrl = (settings: ConsoleSettings, app: string, key?: string): string =>
  `rtmp://${host()}:${settings.rtmp_port}/${app}${key === undefined ? '' : `/${key}`}`;

export function streamUrls(stream: Stream, settings: ConsoleSettings): CopyableUrl[] {
  const urls: CopyableUrl[] = [
    { id: 'obs-server', label: 'OBS server', value: publishUrl(settings, stream.app), hint: 'Settings → Stream → Service: Custom' },
    { id: 'obs-key', label: 'Stream key', value: stream.key },
    { id: 'rtmp', label: 'RTMP', value: publishUrl(settings, stream.app, stream.key), hint: 'publish (FFmpeg) and play' },
    { id: 'http-flv', label: 'HTTP-FLV', value: absolute(httpFlvPath(stream)) },
  ];
  if (stream.hls_url) urls.push({ id: 'hls', label: 'HLS', value: absolute(stream.hls_url) });
  urls.push({ id: 'snapshot', label: 'Snapshot', value: absolute(snapshotPath(stream.stream_id)), hint: 'JPEG of the current keyframe' });
  return urls;
}
