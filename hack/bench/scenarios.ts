// Scenario ids, parsed from the command line:
//   <streams>x<players>[@360p|@720p][/flv|/mix|/hls|/llhls][+rec][+snap[<s>]][+c<bytes>|+cserver][+fleet][+<s>s]   a load run
//   idle<connections>                                                                       memory per idle connection
// e.g. 500x1@360p, 500x1@360p+c128, 1x1000@360p, 1000x0@360p+rec, 500x1@360p+600s, idle1000.
// +c sets the publishers' chunk size for this scenario (+cserver adopts the
// server's, as FFmpeg does); +<s>s measures for that many seconds (a soak).
// +fleet runs two rtmpd processes as two pods of a fleet on the local control
// plane (hack/cluster.sh): publishers on one, players on the other, which pulls
// each stream once from the first (the relay) (rtmpd only).
// +snap is an rtmpd feature: those scenarios run against rtmpd only; /flv
// plays over HTTP-FLV, which Debian's nginx-rtmp cannot serve, and /mix over
// RTMP and HTTP-FLV by turns of two (a stream's players 0 and 1 RTMP, 2 and 3
// HTTP-FLV, ...); /hls and
// /llhls play rtmpd's HLS and Low-Latency HLS (rtmpd only: node-media-server
// 4 has no HLS, nginx-rtmp's writes MPEG-TS files that a player fetches
// from another web server).
import { FIXTURES } from './fixture.ts';
import type { ServerName } from './servers.ts';

export type PlayProtocol = 'rtmp' | 'http-flv' | 'mixed' | 'hls' | 'llhls';

export interface LoadScenario {
  type: 'load';
  id: string;
  streams: number;
  playersPerStream: number;
  fixture: string;
  playProtocol: PlayProtocol;
  recording: boolean;
  /** undefined: snapshots off; 0: keyframe kept, JPEG on request; N: a JPEG every N s. */
  snapshotIntervalSeconds: number | undefined;
  /** The publishers' chunk size for this scenario; undefined: the run's default. */
  publisherChunkSize: number | 'server' | undefined;
  /** The measured window for this scenario; undefined: the run's --duration. */
  durationSeconds: number | undefined;
  /** Publishers on one pod of a fleet, players on another. */
  fleet: boolean;
}

export interface IdleScenario {
  type: 'idle';
  id: string;
  connections: number;
}

export type Scenario = LoadScenario | IdleScenario;

export const DEFAULT_SCENARIOS = [
  '200x1@360p',
  '500x1@360p',
  '500x1@360p+c128',
  '100x3@720p',
  '100x3@720p+c128',
  '1x1000@360p',
  '10x100@360p',
  '1000x0@360p+rec',
  '200x1@360p+rec',
  '200x1@360p+snap',
  '200x1@360p+snap10',
  '100x1@360p/hls+rec',
  '100x1@360p/llhls+rec',
  'idle1000',
];

const PROTOCOLS: Record<string, PlayProtocol> = { '': 'rtmp', '/flv': 'http-flv', '/mix': 'mixed', '/hls': 'hls', '/llhls': 'llhls' };

export function parseScenario(id: string): Scenario {
  const idle = /^idle(\d+)$/.exec(id);
  if (idle) return { type: 'idle', id, connections: Number(idle[1]) };
  const m = /^(\d+)x(\d+)(?:@(\w+))?(\/flv|\/mix|\/hls|\/llhls)?((?:\+(?:rec|snap\d*|c\d+|cserver|fleet|\d+s))*)$/.exec(id);
  if (!m)
    throw new Error(`bad scenario "${id}": expected e.g. 500x1@360p, 500x1@360p+c128, 10x100@360p/flv, 1000x0+rec, 500x1+600s or idle1000`);
  const fixture = m[3] ?? '360p';
  if (!FIXTURES[fixture]) throw new Error(`scenario "${id}": unknown fixture ${fixture} (have ${Object.keys(FIXTURES).join(', ')})`);
  const flags = (m[5] ?? '').split('+').filter(Boolean);
  const snap = flags.find((f) => f.startsWith('snap'));
  const chunk = flags.find((f) => f.startsWith('c'));
  const seconds = flags.find((f) => f.endsWith('s') && !f.startsWith('snap'));
  const publisherChunkSize = chunk === undefined ? undefined : chunk === 'cserver' ? 'server' : Number(chunk.slice(1));
  if (typeof publisherChunkSize === 'number' && (publisherChunkSize < 1 || publisherChunkSize > 0x7fffffff))
    throw new Error(`scenario "${id}": chunk size ${publisherChunkSize} is outside 1..2^31-1`);
  return {
    type: 'load',
    id,
    streams: Number(m[1]),
    playersPerStream: Number(m[2]),
    fixture,
    playProtocol: PROTOCOLS[m[4] ?? '']!,
    recording: flags.includes('rec'),
    snapshotIntervalSeconds: snap === undefined ? undefined : Number(snap.slice(4) || 0),
    publisherChunkSize,
    durationSeconds: seconds === undefined ? undefined : Number(seconds.slice(0, -1)),
    fleet: flags.includes('fleet'),
  };
}

/** Why a server sits a scenario out, or undefined when it runs it. */
export function skipReason(s: Scenario, server: ServerName): string | undefined {
  if (s.type === 'idle') return undefined;
  if (server !== 'rtmpd' && (s.snapshotIntervalSeconds !== undefined || s.playProtocol === 'hls' || s.playProtocol === 'llhls' || s.fleet))
    return 'rtmpd-only variant';
  if (server === 'nginx' && (s.playProtocol === 'http-flv' || s.playProtocol === 'mixed')) return 'nginx-rtmp has no HTTP-FLV';
  return undefined;
}

/** rtmpd's flags for a scenario's own features: snapshots, Low-Latency HLS. */
export function scenarioFlags(s: LoadScenario): string[] {
  const flags = s.playProtocol === 'llhls' ? ['--hls-low-latency', 'true'] : [];
  if (s.snapshotIntervalSeconds === undefined) return flags;
  return [...flags, '--snapshot-enabled', 'true', '--snapshot-interval-seconds', String(s.snapshotIntervalSeconds)];
}
