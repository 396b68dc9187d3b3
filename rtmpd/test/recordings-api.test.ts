// The recordings API against a real rtmpd and ffmpeg publisher: list by
// stream and time, pages, exact bytes for range requests, delete, a VOD HLS
// playlist ffprobe plays, and no way out of the storage directory.
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordingView } from '../src/http/recordings-api.ts';
import { recordingFileName } from '../src/storage/catalog.ts';
import { expectValidLivePlaylist, parsePlaylist } from './support/m3u8.ts';
import { probe, publishTestPattern, runCommand, startServer, stopAll, waitForStream, type RunningServer } from './support/processes.ts';
import { eventually } from './support/wait.ts';

let server: RunningServer;
let recordings: RecordingView[];
// DELETE changes state: it needs an API token like the other state-changing endpoints.
const TOKEN = 'recordings-test-token';
const withToken = { Authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  const tokens = join(await mkdtemp(join(tmpdir(), 'rtmpd-tokens-')), 'tokens');
  await writeFile(tokens, `${TOKEN}\n`);
  server = await startServer(['--recording-segment-seconds', '2', '--snapshot-enabled', 'false', '--api-token-file', tokens]);
  const publisher = publishTestPattern(server.rtmpUrl('live', 'rec'), { seconds: 30 });
  await waitForStream(server, 'rtmp/live/rec');
  // A finished segment and the next one open (a file opens with its first fragment).
  await eventually('a finished segment and an open one', async () => {
    const listed = await recordingsOfStream();
    return listed.some((r) => !r.recording) && listed.some((r) => r.recording);
  });
  // While it records, the open file cannot be deleted. A segment ends only on media, so the
  // publisher is stopped first: once what it sent has been read, the open file stays open.
  publisher.child.kill('SIGSTOP');
  await untilStreamBytesSettle();
  const writing = (await recordingsOfStream()).find((r) => r.recording)!;
  expect((await fetch(server.httpUrl(writing.url), { method: 'DELETE' })).status).toBe(401);
  const refused = await fetch(server.httpUrl(writing.url), { method: 'DELETE', headers: withToken });
  // Still the open file after the DELETE, so open while it was answered: the 409 cannot be timing.
  const stillWriting = (await recordingsOfStream()).find((r) => r.recording)?.id;
  expect({ status: refused.status, stillWriting }).toEqual({ status: 409, stillWriting: writing.id });
  publisher.child.kill('SIGKILL');
  await eventually('every recording finished', async () => (await recordingsOfStream()).every((r) => !r.recording));
  recordings = await recordingsOfStream();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  stopAll();
});

async function list(query = ''): Promise<{ recordings: RecordingView[]; next_page_token: string | null }> {
  const res = await fetch(server.httpUrl(`/api/v1/rtmp/recordings${query}`));
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { recordings: RecordingView[]; next_page_token: string | null };
}

async function recordingsOfStream(): Promise<RecordingView[]> {
  return (await list('?stream_id=rtmp%2Flive%2Frec')).recordings;
}

/** Until the stream's bytes_in holds still over 1 s: the server has read all the stopped publisher sent. */
async function untilStreamBytesSettle(): Promise<void> {
  let last = -1;
  for (;;) {
    const { bytes_in } = await waitForStream(server, 'rtmp/live/rec');
    if (bytes_in === last) return;
    last = bytes_in;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The init section (ftyp, moov) of an fMP4 file and its first moof. */
function firstFragment(file: Buffer): { init: Buffer; fragment: Buffer } {
  let initEnd = 0;
  for (let at = 0; at + 8 <= file.length; at += file.readUInt32BE(at)) {
    const type = file.toString('latin1', at + 4, at + 8);
    if (type === 'moof') return { init: file.subarray(0, initEnd), fragment: file.subarray(at, at + file.readUInt32BE(at)) };
    initEnd = at + file.readUInt32BE(at);
  }
  throw new Error('no moof in the file');
}

/**
 * `files` fMP4 recordings of `fragments` fragments each, one a second of `<app>/k`, made of the
 * stream's first fragment with its media left out (the index reads boxes, not samples); their directory and
 * total size.
 */
async function writeRecordings(app: string, files: number, fragments: number): Promise<{ dir: string; bytes: number }> {
  const { init, fragment } = firstFragment(await readFile(join(server.storageDir, recordings[0]!.id)));
  const emptyMdat = Buffer.from([0, 0, 0, 8, ...Buffer.from('mdat')]);
  const body = Buffer.concat([init, ...Array<Buffer>(fragments).fill(Buffer.concat([fragment, emptyMdat]))]);
  const dir = join(server.storageDir, app);
  await mkdir(join(dir, 'k'), { recursive: true });
  const start = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < files; i++) await writeFile(join(dir, 'k', recordingFileName(new Date(start + i * 1000), 'fmp4')), body);
  return { dir, bytes: files * body.length };
}

/** Bytes the process `pid` has read (files and sockets: /proc/<pid>/io's rchar). */
async function bytesReadBy(pid: number): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'))![1]);
}

/** How many files under `dir` the process `pid` has open now. */
async function filesOpenUnder(pid: number, dir: string): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(`${dir}/`)).length;
}

/** A request sent exactly as written (fetch would normalize `..` away). */
function rawGet(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.httpPort, path, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('recordings API', () => {
  it("lists the stream's segments in time order with their times, sizes and durations", () => {
    expect(recordings.length).toBeGreaterThanOrEqual(2);
    for (const r of recordings) {
      expect(r).toMatchObject({ stream_id: 'rtmp/live/rec', app: 'live', key: 'rec', format: 'fmp4', recording: false });
      expect(r.id).toMatch(/^live\/rec\/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z\.mp4$/);
      expect(r.duration_seconds).toBeGreaterThan(0);
      expect(Date.parse(r.end_time)).toBeGreaterThan(Date.parse(r.start_time));
    }
    const starts = recordings.map((r) => Date.parse(r.start_time));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    const total = recordings.reduce((sum, r) => sum + r.duration_seconds, 0);
    expect(total).toBeGreaterThan(2.5);
  });

  it('pages through them and filters by time range', async () => {
    const seen: string[] = [];
    let token: string | null = null;
    do {
      const page = await list(`?stream_id=rtmp%2Flive%2Frec&limit=1${token ? `&page_token=${token}` : ''}`);
      expect(page.recordings.length).toBe(1);
      seen.push(page.recordings[0]!.id);
      token = page.next_page_token;
    } while (token);
    expect(seen).toEqual(recordings.map((r) => r.id));
    const last = recordings.at(-1)!;
    const later = await list(`?app=live&key=rec&start=${encodeURIComponent(new Date(Date.parse(last.start_time) + 10).toISOString())}`);
    expect(later.recordings.map((r) => r.id)).toEqual([last.id]);
    const none = await list('?stream_id=rtmp%2Flive%2Fnobody');
    expect(none.recordings).toEqual([]);
    expect((await fetch(server.httpUrl('/api/v1/rtmp/recordings?start=yesterday'))).status).toBe(400);
    expect((await fetch(server.httpUrl('/api/v1/rtmp/recordings?limit=0'))).status).toBe(400);
  });

  it('refuses unknown, repeated and invalid query parameters with a JSON 400 naming the parameter', async () => {
    const r = recordings[0]!;
    const cases: [method: string, path: string, parameter: string][] = [
      // The filter's names are start and end: a typo is refused, not answered with every recording.
      ['GET', '/api/v1/rtmp/recordings?from=abc', 'from'],
      ['GET', '/api/v1/rtmp/recordings?stream_id=rtmp%2Flive%2Frec&limit=1&limit=2', 'limit'],
      ['GET', '/api/v1/rtmp/recordings?start=2026-01-01T00:00:00Z&start=2026-01-02T00:00:00Z', 'start'],
      ['GET', '/api/v1/rtmp/recordings?start=yesterday', 'start'],
      ['GET', '/api/v1/rtmp/recordings?limit=0', 'limit'],
      // Only decimal digits are a number: z.coerce took an empty limit as 0 and these as 100.
      ['GET', '/api/v1/rtmp/recordings?limit=', 'limit'],
      ['GET', '/api/v1/rtmp/recordings?limit=1e2', 'limit'],
      ['GET', '/api/v1/rtmp/recordings?limit=%2B100', 'limit'],
      // Only RFC 3339 with an offset: Date.parse took 5 as the year 2001, and a time without an offset in the server's zone.
      ['GET', '/api/v1/rtmp/recordings?start=5', 'start'],
      ['GET', '/api/v1/rtmp/recordings?end=2026-11-24T07:30:00', 'end'],
      ['GET', '/api/v1/rtmp/recordings/playlist.m3u8?stream_id=rtmp%2Flive%2Frec&start=2026', 'start'],
      // A token no page gave out was a 200 with whatever sorted after its bytes, often nothing.
      ['GET', '/api/v1/rtmp/recordings?page_token=garbage', 'page_token'],
      ['GET', `/api/v1/rtmp/recordings?page_token=${Buffer.from('live/rec/not-a-recording').toString('base64url')}`, 'page_token'],
      ['GET', `/api/v1/rtmp/recordings?page_token=${Buffer.from(`pod-0/${r.id}`).toString('base64url')}`, 'page_token'],
      ['GET', '/api/v1/rtmp/recordings/playlist.m3u8?stream_id=rtmp%2Flive%2Frec&to=2026-01-01T00:00:00Z', 'to'],
      ['GET', '/api/v1/rtmp/recordings/playlist.m3u8?stream_id=rtmp%2Flive%2Frec&stream_id=rtmp%2Flive%2Fother', 'stream_id'],
      ['GET', `${r.url}?download=1`, 'download'],
      ['GET', `/api/v1/rtmp/recordings/${r.id}?download=1`, 'download'],
      ['DELETE', `${r.url}?force=1`, 'force'],
      ['GET', '/metrics?name[]=rtmpd_streams', 'name[]'],
      ['GET', '/console/settings.json?v=2', 'v'],
    ];
    for (const [method, path, parameter] of cases) {
      const res = await fetch(server.httpUrl(path), { method, headers: withToken });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json(), `${method} ${path}`).toEqual({
        error: { code: 'bad_request', message: expect.stringContaining(`"${parameter}"`) },
      });
    }
    const unknown = (await (await fetch(server.httpUrl('/api/v1/rtmp/recordings?from=abc'))).json()) as { error: { message: string } };
    expect(unknown.error.message).toBe(
      'unknown query parameter "from"; this endpoint takes stream_id, app, key, start, end, limit, page_token',
    );
    // The refused DELETE left the file.
    expect((await fetch(server.httpUrl(r.url), { method: 'HEAD' })).status).toBe(200);
  });

  it('serves a file whole and the exact bytes of a range request', async () => {
    const r = recordings[0]!;
    const onDisk = await readFile(join(server.storageDir, r.id));
    const whole = await fetch(server.httpUrl(r.url));
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(onDisk)).toBe(true);
    const part = await fetch(server.httpUrl(r.url), { headers: { Range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${onDisk.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(onDisk.subarray(100, 1100))).toBe(true);
    const suffix = await fetch(server.httpUrl(r.url), { headers: { Range: 'bytes=-500' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(onDisk.subarray(onDisk.length - 500))).toBe(true);
    const beyond = await fetch(server.httpUrl(r.url), { headers: { Range: `bytes=${onDisk.length}-` } });
    expect(beyond.status).toBe(416);
    // The unencoded form names the same file.
    expect((await fetch(server.httpUrl(`/api/v1/rtmp/recordings/${r.id}`))).status).toBe(200);
  });

  it('builds a VOD HLS playlist over the stream that ffprobe plays, addressed by byte ranges', async () => {
    const url = server.httpUrl('/api/v1/rtmp/recordings/playlist.m3u8?stream_id=rtmp%2Flive%2Frec');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    const text = await res.text();
    expect(text).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(text).toContain('#EXT-X-ENDLIST');
    expect(text).toMatch(/#EXT-X-MAP:URI="live%2Frec%2F[^"]+\.mp4",BYTERANGE="\d+@0"/);
    const parsed = parsePlaylist(text);
    expectValidLivePlaylist(parsed);
    const probed = await probe(url);
    expect(probed.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const decoded = await runCommand('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', url]);
    expect(Number(decoded.stdout.trim())).toBeCloseTo(
      recordings.reduce((sum, r) => sum + r.duration_seconds, 0),
      0,
    );
  });

  it('indexes a page of many long recordings two files at a time, whoever asks for it', async () => {
    // Any client may list (--api-read-access): a page of 1,000 long files indexed all at once held 450 MiB
    // and took libuv's threads, which the recorder's writes share, for a minute.
    const FILES = 100;
    const { dir } = await writeRecordings('bulk', FILES, 200);
    let sampling = true;
    const openAtOnce: number[] = [];
    const sampler = (async () => {
      while (sampling) {
        openAtOnce.push(await filesOpenUnder(server.child.pid!, dir));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const page = await list('?app=bulk&limit=1000');
    sampling = false;
    await sampler;
    expect(page.recordings).toHaveLength(FILES);
    expect(new Set(page.recordings.map((r) => r.duration_seconds)).size).toBe(1);
    // The sampler saw the walk (it cannot pass by missing it), and never more than two files open.
    expect(Math.max(...openAtOnce)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...openAtOnce)).toBeLessThanOrEqual(2);
    await rm(dir, { recursive: true });
  });

  it("answers a small list while another client's page of 400 files is indexed, in turns of a file", async () => {
    const page = await writeRecordings('crowd', 400, 200);
    const small = await writeRecordings('solo', 1, 200);
    const pageDone = list('?app=crowd&limit=1000').then(() => performance.now());
    // Once the page's files are being read (all 400 are waiting for their turn), the small list is asked.
    while ((await filesOpenUnder(server.child.pid!, page.dir)) === 0) await new Promise((r) => setTimeout(r, 2));
    const smallAsked = performance.now();
    await list('?app=solo');
    const smallMs = performance.now() - smallAsked;
    const pageLeftMs = (await pageDone) - smallAsked;
    // In one queue for all, the small list's file came after the page's 400: it answered when the page did.
    expect(smallMs, `the page answered ${pageLeftMs.toFixed(0)} ms after the small list was asked`).toBeLessThan(pageLeftMs / 2);
    await Promise.all([page, small].map(({ dir }) => rm(dir, { recursive: true })));
  });

  it('stops reading the files of a page whose client left', async () => {
    const { dir, bytes } = await writeRecordings('left', 400, 200);
    const pid = server.child.pid!;
    const before = await bytesReadBy(pid);
    const page = request({ host: '127.0.0.1', port: server.httpPort, path: '/api/v1/rtmp/recordings?app=left&limit=1000' });
    page.on('error', () => {});
    page.end();
    // Once its files are being read, the client leaves.
    while ((await filesOpenUnder(pid, dir)) === 0) await new Promise((r) => setTimeout(r, 2));
    page.destroy();
    // Until rtmpd has read nothing for half a second (in one queue for all, it went on to read all 400 files).
    let read = await bytesReadBy(pid);
    for (let last = -1; read !== last; read = await bytesReadBy(pid)) {
      last = read;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(read - before, `of ${bytes} bytes`).toBeLessThan(bytes / 10);
    await rm(dir, { recursive: true });
  });

  it('never serves or deletes a path outside the storage directory', async () => {
    const secret = join(server.storageDir, '..', 'secret.mp4');
    await writeFile(secret, 'not yours');
    // A symlink planted among the recordings is not followed.
    await symlink(secret, join(server.storageDir, 'live', 'rec', '2020-01-01T00-00-00.000Z.mp4'));
    const attempts = [
      '/api/v1/rtmp/recordings/..%2Fsecret.mp4',
      '/api/v1/rtmp/recordings/live%2F..%2F..%2Fsecret.mp4',
      '/api/v1/rtmp/recordings/live%2Frec%2F..%2F..%2F..%2Fsecret.mp4',
      '/api/v1/rtmp/recordings/%2Fetc%2Fpasswd',
      '/api/v1/rtmp/recordings/live/rec/../../../secret.mp4',
      '/api/v1/rtmp/recordings/live/rec/2020-01-01T00-00-00.000Z.mp4',
      '/api/v1/rtmp/recordings/live%2Frec%2F2020-01-01T00-00-00.000Z.mp4',
      '/api/v1/rtmp/recordings/..%252F..%252Fsecret.mp4',
    ];
    for (const path of attempts) {
      const status = await rawGet(path);
      expect([400, 404], path).toContain(status);
      const del = await fetch(server.httpUrl(path), { method: 'DELETE', headers: withToken });
      expect([400, 404], `DELETE ${path}`).toContain(del.status);
    }
    expect(await readFile(secret, 'utf8')).toBe('not yours');
    expect((await list('?stream_id=rtmp%2Flive%2Frec')).recordings.map((r) => r.id)).toEqual(recordings.map((r) => r.id));
  });

  it('deletes a recording, with an API token', async () => {
    const r = recordings[0]!;
    const res = await fetch(server.httpUrl(r.url), { method: 'DELETE', headers: withToken });
    expect(res.status).toBe(204);
    expect((await fetch(server.httpUrl(r.url))).status).toBe(404);
    expect((await fetch(server.httpUrl(r.url), { method: 'DELETE', headers: withToken })).status).toBe(404);
    expect((await list('?stream_id=rtmp%2Flive%2Frec')).recordings.map((x) => x.id)).not.toContain(r.id);
  });
});
