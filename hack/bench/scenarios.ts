// Scenario ids, parsed from the command line:
//   <streams>x<players>[@360p|@720p][/flv][+rec][+snap[<seconds>]]   a load run
//   idle<connections>                                                 memory per idle connection
// e.g. 500x1@360p, 100x3@720p, 10x100@360p/flv, 200x1@360p+rec, idle1000.
// +rec and +snap are rtmpd features: those scenarios run against rtmpd only;
// /flv plays over HTTP-FLV, which Debian's nginx-rtmp cannot serve.
import { FIXTURES } from './fixture.ts';
import type { PlayProtocol } from './loadgen.ts';
import type { ServerName } from './servers.ts';

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
  '100x3@720p',
  '10x100@360p',
  '200x1@360p+rec',
  '200x1@360p+snap',
  '200x1@360p+snap10',
  'idle1000',
];

export function parseScenario(id: string): Scenario {
  const idle = /^idle(\d+)$/.exec(id);
  if (idle) return { type: 'idle', id, connections: Number(idle[1]) };
  const m = /^(\d+)x(\d+)(?:@(\w+))?(\/flv)?((?:\+(?:rec|snap\d*))*)$/.exec(id);
  if (!m) throw new Error(`bad scenario "${id}": expected e.g. 500x1@360p, 10x100@360p/flv, 200x1@360p+rec, 200x1+snap10 or idle1000`);
  const fixture = m[3] ?? '360p';
  if (!FIXTURES[fixture]) throw new Error(`scenario "${id}": unknown fixture ${fixture} (have ${Object.keys(FIXTURES).join(', ')})`);
  const flags = (m[5] ?? '').split('+').filter(Boolean);
  const snap = flags.find((f) => f.startsWith('snap'));
  return {
    type: 'load',
    id,
    streams: Number(m[1]),
    playersPerStream: Number(m[2]),
    fixture,
    playProtocol: m[4] ? 'http-flv' : 'rtmp',
    recording: flags.includes('rec'),
    snapshotIntervalSeconds: snap === undefined ? undefined : Number(snap.slice(4) || 0),
  };
}

/** Why a server sits a scenario out, or undefined when it runs it. */
export function skipReason(s: Scenario, server: ServerName): string | undefined {
  if (s.type === 'idle') return undefined;
  if (server !== 'rtmpd' && (s.recording || s.snapshotIntervalSeconds !== undefined)) return 'rtmpd-only variant';
  if (server === 'nginx' && s.playProtocol === 'http-flv') return 'nginx-rtmp has no HTTP-FLV';
  return undefined;
}

export function rtmpdFlags(s: LoadScenario): string[] {
  const flags: string[] = [];
  if (s.recording) flags.push('--recording-enabled', 'true');
  if (s.snapshotIntervalSeconds !== undefined) {
    flags.push('--snapshot-enabled', 'true', '--snapshot-interval-seconds', String(s.snapshotIntervalSeconds));
  }
  return flags;
}
