// An RTMP or RTMPS URL as a publishing client reads it, the way librtmp,
// OBS and FFmpeg split it: the app is the path up to its last slash, the
// stream name what follows it (its query included: Facebook's keys carry
// one). The stream name is the destination's secret, so a destination is
// only ever described without it.

export interface Destination {
  secure: boolean;
  host: string;
  port: number;
  app: string;
  /** The stream key the destination is published to: a secret. */
  streamName: string;
  /** The connect command's tcUrl: scheme, host, port and app. */
  tcUrl: string;
  /** The URL without its stream name, for logs, the API and errors. */
  description: string;
}

const URL_SHAPE = /^(rtmps?):\/\/([^/?#@\s]+)\/([^?#\s]*)\/([^/#\s][^#\s]*)$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

export class DestinationError extends Error {
  override name = 'DestinationError';
}

/** Reads rtmp[s]://host[:port]/app/streamName; throws DestinationError (without the URL's secret in it). */
export function parseDestination(url: string): Destination {
  const match = URL_SHAPE.exec(url.trim());
  if (!match) throw new DestinationError(`${redactUrl(url)} is not rtmp[s]://host[:port]/app/key`);
  const [, scheme, authority, app, streamName] = match as unknown as [string, 'rtmp' | 'rtmps', string, string, string];
  const hostPort = HOST_PORT.exec(authority);
  const port = Number(hostPort?.[2] ?? (scheme === 'rtmps' ? 443 : 1935));
  if (!hostPort || app === '' || port < 1 || port > 65535) throw new DestinationError(`${redactUrl(url)}: bad host, port or app`);
  const host = hostPort[1]!.replace(/^\[|\]$/g, '');
  const tcUrl = `${scheme}://${authority}/${app}`;
  return { secure: scheme === 'rtmps', host, port, app, streamName, tcUrl, description: `${tcUrl}/***` };
}

/** A URL as it may be logged: everything after the last slash (the stream key) and any user info replaced. */
export function redactUrl(url: string): string {
  const trimmed = url.trim().replace(/\/\/[^/@]*@/, '//***@');
  const path = trimmed.replace(/[?#].*$/, '');
  const cut = path.lastIndexOf('/');
  return cut > trimmed.indexOf('//') + 1 ? `${path.slice(0, cut)}/***` : '***';
}
