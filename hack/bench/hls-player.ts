// An HLS player for the load generator, as a live player fetches: regular
// HLS polls the playlist about every half target duration and downloads each
// new segment; Low-Latency HLS asks for the next part with a blocking
// playlist reload (_HLS_msn/_HLS_part) and downloads it as soon as the
// playlist lists it. Every video sample of what arrives is handed over with
// the time its bytes arrived, so the bench's SEI wall-clock stamps give the
// delay from the publisher's send to the moment a player could have it.
import { Agent, request } from 'node:http';

export interface HlsPlayerOptions {
  playlistUrl: string;
  lowLatency: boolean;
  /** Called with each video sample: length-prefixed NAL units. */
  onVideoSample: (sample: Buffer) => void;
  onError: (err: Error) => void;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4096 });

/**
 * One GET; a request that fails on the network (a kept-alive socket the server
 * closed just as it was reused) is sent once more, as hls.js retries.
 */
async function get(url: string): Promise<{ status: number; body: Buffer }> {
  try {
    return await getOnce(url);
  } catch {
    return getOnce(url);
  }
}

function getOnce(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

interface Listed {
  segments: { msn: number; uri: string }[];
  parts: { msn: number; index: number; uri: string }[];
  targetDuration: number;
  ended: boolean;
}

function parse(text: string): Listed {
  const listed: Listed = { segments: [], parts: [], targetDuration: 2, ended: false };
  let msn = 0;
  let partIndex = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) msn = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) listed.targetDuration = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-PART:')) listed.parts.push({ msn, index: partIndex++, uri: /URI="([^"]+)"/.exec(line)![1]! });
    else if (line === '#EXT-X-ENDLIST') listed.ended = true;
    else if (line.length > 0 && !line.startsWith('#')) {
      listed.segments.push({ msn: msn++, uri: line });
      partIndex = 0;
    }
  }
  return listed;
}

export class HlsPlayer {
  private readonly options: HlsPlayerOptions;
  private readonly base: string;
  /** Body bytes of every response it got, playlists and media: what rtmpd counts as sent to its HLS players. */
  bytes = 0;
  private stopped = false;
  private videoTrack = 1;

  constructor(options: HlsPlayerOptions) {
    this.options = options;
    this.base = options.playlistUrl.slice(0, options.playlistUrl.lastIndexOf('/') + 1);
  }

  /** Resolves once the first playlist arrived; playback goes on until stop(). */
  async start(): Promise<void> {
    const first = await this.get(this.options.playlistUrl);
    if (first.status !== 200) throw new Error(`HTTP ${first.status} for ${this.options.playlistUrl}`);
    const listed = parse(first.body.toString());
    const loop = this.options.lowLatency ? this.lowLatencyLoop(listed) : this.pollLoop(listed);
    loop.catch((err: Error) => {
      if (!this.stopped) this.options.onError(err);
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** Regular HLS: the newest segment first, then each new one as the playlist, polled every half target duration, lists it. */
  private async pollLoop(listed: Listed): Promise<void> {
    let next = listed.segments.at(-1)!.msn;
    for (;;) {
      for (const segment of listed.segments) {
        if (segment.msn < next || this.stopped) continue;
        await this.fetchMedia(segment.uri);
        next = segment.msn + 1;
      }
      if (this.stopped || listed.ended) return;
      await new Promise((r) => setTimeout(r, (listed.targetDuration * 1000) / 2));
      const res = await this.get(this.options.playlistUrl);
      if (res.status !== 200) throw new Error(`HTTP ${res.status} for the playlist`);
      listed = parse(res.body.toString());
    }
  }

  /**
   * LL-HLS: block for the next part, then fetch every part the playlist lists
   * from there (one when at the live edge, all of them when behind: a player
   * that fetched one part per reload would never catch up), repeat.
   */
  private async lowLatencyLoop(listed: Listed): Promise<void> {
    const last = listed.parts.at(-1);
    let msn = last ? last.msn : listed.segments.at(-1)!.msn + 1;
    let index = last ? last.index + 1 : 0;
    const notBefore = (p: { msn: number; index: number }) => p.msn > msn || (p.msn === msn && p.index >= index);
    for (;;) {
      // Past a segment's last part the next one is part 0 of the next segment; a player
      // that fell behind the parts the playlist still lists goes on from the oldest listed
      // after it, as a real player resyncs (what it skipped counts as lost).
      for (const part of listed.parts.filter(notBefore)) {
        if (this.stopped) return;
        await this.fetchMedia(part.uri);
        msn = part.msn;
        index = part.index + 1;
      }
      if (this.stopped || listed.ended) return;
      const res = await this.get(`${this.options.playlistUrl}?_HLS_msn=${msn}&_HLS_part=${index}`);
      if (res.status !== 200) throw new Error(`HTTP ${res.status} for the blocking reload`);
      listed = parse(res.body.toString());
    }
  }

  private async get(url: string): Promise<{ status: number; body: Buffer }> {
    const res = await get(url);
    this.bytes += res.body.length;
    return res;
  }

  private async fetchMedia(uri: string): Promise<void> {
    const res = await this.get(this.base + uri);
    if (res.status !== 200) throw new Error(`HTTP ${res.status} for ${uri}`);
    this.samples(res.body);
  }

  /** Walks moof/mdat pairs and hands over each sample of the video track. */
  private samples(data: Buffer): void {
    let p = 0;
    while (p + 8 <= data.length) {
      const size = data.readUInt32BE(p);
      if (size < 8 || p + size > data.length) return;
      if (data.toString('latin1', p + 4, p + 8) === 'moof') this.moof(data, p, size);
      p += size;
    }
  }

  private moof(data: Buffer, moofAt: number, moofSize: number): void {
    for (let p = moofAt + 8; p + 8 <= moofAt + moofSize;) {
      const size = data.readUInt32BE(p);
      if (data.toString('latin1', p + 4, p + 8) === 'traf') this.traf(data, moofAt, p, size);
      p += size;
    }
  }

  private traf(data: Buffer, moofAt: number, trafAt: number, trafSize: number): void {
    let track = 0;
    for (let p = trafAt + 8; p + 8 <= trafAt + trafSize;) {
      const size = data.readUInt32BE(p);
      const type = data.toString('latin1', p + 4, p + 8);
      if (type === 'tfhd') track = data.readUInt32BE(p + 12);
      if (type === 'trun' && track === this.videoTrack) {
        const flags = data.readUInt32BE(p + 8) & 0xffffff;
        const count = data.readUInt32BE(p + 12);
        let q = p + 16;
        let offset = moofAt;
        if (flags & 0x1) {
          offset += data.readInt32BE(q);
          q += 4;
        }
        if (flags & 0x4) q += 4;
        for (let i = 0; i < count; i++) {
          if (flags & 0x100) q += 4;
          const sampleSize = flags & 0x200 ? data.readUInt32BE(q) : 0;
          if (flags & 0x200) q += 4;
          if (flags & 0x400) q += 4;
          if (flags & 0x800) q += 4;
          this.options.onVideoSample(data.subarray(offset, offset + sampleSize));
          offset += sampleSize;
        }
      }
      p += size;
    }
  }
}
