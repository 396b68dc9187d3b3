// The addresses a person copies from the console, over every listener rtmpd
// has: RTMP and RTMPS go to the host the page was loaded from, on the ports
// rtmpd listens on; HTTP-FLV and HLS are the page's own origin, and the same
// path over the other of HTTP and HTTPS when rtmpd serves both.
import { absolute, httpFlvPath, snapshotPath, type ConsoleSettings, type Stream } from './api.ts';

export interface CopyableUrl {
  id: string;
  label: string;
  value: string;
  hint?: string;
}

const host = (): string => (location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname);

const rtmpUrl = (scheme: 'rtmp' | 'rtmps', port: number, app: string, key?: string): string =>
  `${scheme}://${host()}:${port}/${app}${key === undefined ? '' : `/${key}`}`;

/** `rtmp://host:1935/app`, or with the key: the URL FFmpeg publishes to and RTMP players play from. */
export const publishUrl = (settings: ConsoleSettings, app: string, key?: string): string => rtmpUrl('rtmp', settings.rtmp_port, app, key);

/** The same over TLS (`rtmps://host:443/app`), when rtmpd listens for RTMPS. */
export const securePublishUrl = (settings: ConsoleSettings, app: string, key?: string): string | undefined =>
  settings.rtmps_port === null ? undefined : rtmpUrl('rtmps', settings.rtmps_port, app, key);

/** A path relative to the page over HTTP and over HTTPS, each when rtmpd serves it. */
function overHttp(settings: ConsoleSettings, path: string): { http?: string; https?: string } {
  const page = new URL(absolute(path));
  const secure = page.protocol === 'https:';
  const otherPort = secure ? settings.http_port : settings.https_port;
  let other: string | undefined;
  if (otherPort !== null) {
    const url = new URL(page);
    url.protocol = secure ? 'http:' : 'https:';
    url.port = String(otherPort);
    other = url.href;
  }
  return secure ? { http: other, https: page.href } : { http: page.href, https: other };
}

/** The rows whose value is known. */
const known = (...rows: (Omit<CopyableUrl, 'value'> & { value: string | undefined })[]): CopyableUrl[] =>
  rows.filter((row): row is CopyableUrl => row.value !== undefined);

export function streamUrls(stream: Stream, settings: ConsoleSettings): CopyableUrl[] {
  const flv = overHttp(settings, httpFlvPath(stream));
  const hls = stream.hls_url === null ? {} : overHttp(settings, stream.hls_url);
  return known(
    { id: 'obs-server', label: 'OBS server', value: publishUrl(settings, stream.app), hint: 'Settings → Stream → Service: Custom' },
    { id: 'obs-server-tls', label: 'OBS server (RTMPS)', value: securePublishUrl(settings, stream.app), hint: 'the same over TLS' },
    { id: 'obs-key', label: 'Stream key', value: stream.key },
    { id: 'rtmp', label: 'RTMP', value: publishUrl(settings, stream.app, stream.key), hint: 'publish (FFmpeg) and play' },
    { id: 'rtmps', label: 'RTMPS', value: securePublishUrl(settings, stream.app, stream.key), hint: 'publish and play over TLS' },
    { id: 'http-flv', label: 'HTTP-FLV', value: flv.http },
    { id: 'https-flv', label: 'HTTPS-FLV', value: flv.https },
    { id: 'hls', label: 'HLS', value: hls.http },
    { id: 'hls-tls', label: 'HLS (HTTPS)', value: hls.https },
    {
      id: 'snapshot',
      label: 'Snapshot',
      value: settings.snapshots ? absolute(snapshotPath(stream.stream_id)) : undefined,
      hint: 'JPEG of the current keyframe',
    },
  );
}
