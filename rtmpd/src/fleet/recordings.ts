// The recordings API's fleet-wide answers: each pod keeps its recordings on
// its own volume, so a list asks every present pod (directory.ts), seen
// renewed lately or not, for its page (in parallel, with the fleet token)
// and merges them in time order, and a download or delete of another pod's
// recording is passed on to it as a stream. A recording's id is qualified
// by the pod that holds it (`<pod>/<app>/<key>/<file>`): two pods may record
// the same stream in the same millisecond (a takeover while the old owner
// still writes), and the id says where to ask.
import type { RouterContext } from '@koa/router';
import { z } from 'zod';
import type { VodFile } from '../hls/vod-playlist.ts';
import { ApiError } from '../http/errors.ts';
import { wholeNumber } from '../http/query.ts';
import { recordingUrl, type RecordingStore } from '../http/recording-store.ts';
import { abortedBy } from '../http/routing.ts';
import {
  pageTokenId,
  type FleetRecordingList,
  type FleetRecordings,
  type RecordingListQuery,
  type RecordingSelection,
  type RecordingView,
} from '../http/recordings-api.ts';
import { parseRecordingName } from '../storage/catalog.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { FleetDirectory } from './directory.ts';
import { fleetGet, fleetRequest } from './peer-http.ts';
import { FLEET_PREFIX } from './wire.ts';

/** A path under /fleet/v1/recordings. */
const recordingsPath = (rest: string): string => `${FLEET_PREFIX}/recordings${rest}`;
/** A page of 1000 recordings is about 400 KiB. */
const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/** A stream's fragment index: about 50 KiB per 10-minute file. */
const MAX_VOD_BYTES = 32 * 1024 * 1024;

const text = z.string().max(1024);
const recordingView = z.object({
  id: text,
  stream_id: text,
  app: text,
  key: text,
  format: z.enum(['fmp4', 'flv']),
  start_time: z.iso.datetime(),
  end_time: z.iso.datetime(),
  duration_seconds: z.number().nonnegative(),
  size_bytes: z.number().int().nonnegative(),
  recording: z.boolean(),
  url: text,
  pod: text,
});

/** One pod's answer to GET /fleet/v1/recordings. */
export const podRecordingPage = z.object({ recordings: z.array(recordingView).max(1000), more: z.boolean() });
export type PodRecordingPage = z.infer<typeof podRecordingPage>;

/** One pod's answer to GET /fleet/v1/recordings/vod. */
export const podVodFiles = z.object({
  files: z
    .array(
      z.object({
        uri: text,
        wallClock: z.number(),
        initSize: z.number().int().nonnegative(),
        fragments: z.array(
          z.object({
            offset: z.number().int().nonnegative(),
            size: z.number().int().nonnegative(),
            start: z.number(),
            duration: z.number().nonnegative(),
            independent: z.boolean(),
          }),
        ),
      }),
    )
    .max(100_000),
});

/** What a pod is asked for its page: the selection, and where the page before ended. */
export const podPageQuery = z.object({ after: text.optional(), limit: wholeNumber(1, 1000) });

const qualified = (pod: string, id: string): string => `${pod}/${id}`;

/** Where a recording sorts in the fleet's list: by start time, then by qualified id. */
function position(id: string): [number, string] {
  const start = parseRecordingName(id.slice(id.lastIndexOf('/') + 1))?.start.getTime() ?? -Infinity;
  return [start, id];
}

const before = (a: [number, string], b: [number, string]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/** This pod's recordings of a selection that come after `after` (a qualified id), at most `limit`; `signal`: the client left. */
export async function podRecordings(
  store: RecordingStore,
  pod: string,
  query: RecordingSelection & { after?: string | undefined; limit: number },
  signal?: AbortSignal,
): Promise<PodRecordingPage> {
  const cursor = query.after === undefined ? undefined : position(query.after);
  const files = (await store.select(query)).filter((f) => !cursor || before(cursor, position(qualified(pod, f.id))));
  const page = files.slice(0, query.limit);
  const views = await store.views(page, signal);
  return {
    recordings: views.map((v) => ({ ...v, id: qualified(pod, v.id), url: recordingUrl(qualified(pod, v.id)), pod })),
    more: files.length > page.length,
  };
}

/** This pod's fMP4 files of a stream, addressed by their qualified ids; `signal`: the client left. */
export function podVod(store: RecordingStore, pod: string, query: RecordingSelection, signal?: AbortSignal): Promise<VodFile[]> {
  return store.vod(query, (id) => encodeURIComponent(qualified(pod, id)), signal);
}

/** Merges the pods' pages into one page of `limit`, in time order. */
export function mergePages(pages: ReadonlyMap<string, PodRecordingPage | undefined>, limit: number): FleetRecordingList {
  const all: RecordingView[] = [];
  const unreachable: string[] = [];
  let more = false;
  for (const [pod, page] of pages) {
    if (!page) unreachable.push(pod);
    else {
      all.push(...page.recordings);
      more ||= page.more;
    }
  }
  all.sort((a, b) => {
    const [pa, pb] = [position(a.id), position(b.id)];
    return before(pa, pb) ? -1 : before(pb, pa) ? 1 : 0;
  });
  const recordings = all.slice(0, limit);
  more ||= all.length > limit;
  return {
    recordings,
    next_page_token: more && recordings.length ? Buffer.from(recordings.at(-1)!.id).toString('base64url') : null,
    unreachable_pods: unreachable.sort(),
  };
}

/** An answer is only taken if every recording in it is of the pod asked. */
export function validPage(pod: string, body: Buffer): PodRecordingPage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const page = podRecordingPage.safeParse(json);
  if (!page.success || page.data.recordings.some((r) => r.pod !== pod || !r.id.startsWith(`${pod}/`))) return undefined;
  return page.data;
}

/** The selection as query parameters again, for another pod. */
function selectionParams(query: RecordingSelection): URLSearchParams {
  const params = new URLSearchParams();
  for (const name of ['stream_id', 'app', 'key'] as const) if (query[name] !== undefined) params.set(name, query[name]);
  for (const name of ['start', 'end'] as const) if (query[name] !== undefined) params.set(name, new Date(query[name]).toISOString());
  return params;
}

export interface FleetRecordingOptions {
  directory: FleetDirectory;
  pod: string;
  identity: string;
  token: string;
  store: RecordingStore;
  log: Logger;
  /** For a pod's page or VOD index. */
  timeoutMs?: number;
  /** For a download or delete to begin, and for a download that stalls. */
  forwardTimeoutMs?: number;
}

const FORWARDED_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'www-authenticate'];

export class FleetRecordingIndex implements FleetRecordings {
  readonly pod: string;
  private readonly o: Required<FleetRecordingOptions>;

  constructor(o: FleetRecordingOptions) {
    this.o = { timeoutMs: 2000, forwardTimeoutMs: 15_000, ...o };
    this.pod = o.pod;
  }

  async list(query: RecordingListQuery, signal?: AbortSignal): Promise<FleetRecordingList> {
    const after = query.page_token ? pageTokenId(query.page_token, true) : undefined;
    const params = selectionParams(query);
    params.set('limit', String(query.limit));
    if (after !== undefined) params.set('after', after);
    const pages = await this.ask(
      () => podRecordings(this.o.store, this.pod, { ...query, after, limit: query.limit }, signal),
      recordingsPath(`?${params}`),
      MAX_PAGE_BYTES,
      validPage,
      signal,
    );
    return mergePages(pages, query.limit);
  }

  async vod(query: RecordingSelection, signal?: AbortSignal): Promise<VodFile[]> {
    const answers = await this.ask(
      () => podVod(this.o.store, this.pod, query, signal).then((files) => ({ files })),
      recordingsPath(`/vod?${selectionParams(query)}`),
      MAX_VOD_BYTES,
      (pod, body) => {
        try {
          const got = podVodFiles.safeParse(JSON.parse(body.toString('utf8')));
          return got.success && got.data.files.every((f) => f.uri.startsWith(encodeURIComponent(`${pod}/`))) ? got.data : undefined;
        } catch {
          return undefined;
        }
      },
      signal,
    );
    return [...answers.values()].flatMap((a) => a?.files ?? []).sort((a, b) => a.wallClock - b.wallClock);
  }

  async forward(ctx: RouterContext, pod: string, id: string): Promise<void> {
    const holder = this.o.directory.presentPods().find((p) => p.pod === pod);
    if (!holder) throw new ApiError(404, 'recording_not_found', `no recording ${pod}/${id}: ${pod} is not a pod of this fleet`);
    const path = recordingsPath(`/${id.split('/').map(encodeURIComponent).join('/')}`);
    const range = ctx.get('range');
    const upstream = await fleetRequest(holder.httpAddress, ctx.method, path, {
      token: this.o.token,
      timeoutMs: this.o.forwardTimeoutMs,
      signal: abortedBy(ctx),
      headers: range ? { range } : {},
    });
    if (!upstream) throw new ApiError(502, 'pod_unreachable', `${pod}, which holds recording ${pod}/${id}, did not answer`);
    ctx.status = upstream.statusCode ?? 502;
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges');
    ctx.set('Cache-Control', 'no-cache');
    for (const name of FORWARDED_HEADERS) {
      const value = upstream.headers[name];
      if (typeof value === 'string') ctx.set(name, value);
    }
    // Streamed as it comes (a recording may be gigabytes); Koa destroys it when the client goes away.
    if (ctx.status === 204) upstream.resume();
    else ctx.body = upstream;
  }

  /** Asks every present pod (this one without a request); undefined for a pod that did not answer validly. */
  private async ask<T>(
    local: () => Promise<T>,
    path: string,
    maxBytes: number,
    validate: (pod: string, body: Buffer) => T | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, T | undefined>> {
    const pods = this.o.directory.presentPods();
    const answers = await Promise.all(
      pods.map(async (pod): Promise<[string, T | undefined]> => {
        if (pod.identity === this.o.identity) return [pod.pod, await local()];
        const got = await fleetGet(pod.httpAddress, path, { token: this.o.token, timeoutMs: this.o.timeoutMs, maxBytes, signal });
        const answer = got?.status === 200 ? validate(pod.pod, got.body) : undefined;
        if (!answer) this.o.log.warn({ pod: pod.pod, status: got?.status, path }, 'fleet: a pod did not answer for its recordings');
        return [pod.pod, answer];
      }),
    );
    return new Map(answers);
  }
}
