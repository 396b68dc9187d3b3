// The console's view of rtmpd's HTTP API. Every path is relative to the page,
// so the console also works behind a proxy that mounts rtmpd under a prefix.
import type { ConsoleSettings } from '../../src/http/console.ts';
import type { StreamView } from '../../src/http/stream-view.ts';

/** A stream as the list and detail endpoints return it; its owner is the pod that owns it in a fleet. */
export type Stream = StreamView;

export interface Recording {
  id: string;
  start_time: string;
  duration_seconds: number;
  size_bytes: number;
}

export type { ConsoleSettings };

const TOKEN_KEY = 'rtmpd.apiToken';

/** Thrown when the API wants a token (401) or refuses the one it got (403). */
export class Unauthorized extends Error {}

export class Api {
  private token = localStorage.getItem(TOKEN_KEY);

  /** Headers every API and media request carries (the bearer token, once given). */
  headers(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  setToken(token: string): void {
    this.token = token;
    localStorage.setItem(TOKEN_KEY, token);
  }

  settings(): Promise<ConsoleSettings> {
    return this.json('console/settings.json');
  }

  async streams(): Promise<Stream[]> {
    return (await this.json<{ streams: Stream[] }>('api/v1/rtmp/streams')).streams;
  }

  async recordings(streamId: string): Promise<Recording[]> {
    const query = new URLSearchParams({ stream_id: streamId });
    return (await this.json<{ recordings: Recording[] }>(`api/v1/rtmp/recordings?${query}`)).recordings;
  }

  /** A JPEG of the stream's current keyframe, or the HTTP status that said why not. */
  async snapshot(streamId: string): Promise<Blob | number> {
    const res = await fetch(snapshotPath(streamId), { headers: this.headers(), cache: 'no-store' });
    if (res.status === 401 || res.status === 403) throw new Unauthorized(await errorMessage(res));
    return res.ok ? res.blob() : res.status;
  }

  private async json<T>(path: string): Promise<T> {
    const res = await fetch(path, { headers: this.headers(), cache: 'no-store' });
    if (res.status === 401 || res.status === 403) throw new Unauthorized(await errorMessage(res));
    if (!res.ok) throw new Error(`${path}: ${await errorMessage(res)}`);
    return (await res.json()) as T;
  }
}

export const snapshotPath = (streamId: string): string => `api/v1/rtmp/streams/${encodeURIComponent(streamId)}/snapshot`;
export const httpFlvPath = (stream: Stream): string => `${stream.app}/${stream.key}.flv`;

/** An absolute URL for a path relative to the console's page. */
export const absolute = (path: string): string => new URL(path, location.href).href;

async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${res.status}`;
}
