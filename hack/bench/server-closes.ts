// What rtmpd says it refused or closed, read from its /metrics: the bench
// reports it beside what its clients saw, the soak counts the internal errors
// (bugs) among it. server-closes.test.ts drives a real rtmpd into each kind.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The counters of connections rtmpd refused or closed, each under its reason label (RTMP's per protocol), and stalled players. */
const CLOSE_COUNTERS =
  /^rtmpd_(?:connections_refused|handshake_failures|protocol_errors|players_stalled_closed)_total(?:\{(?:protocol="[^"]+",)?reason="([^"]+)"\})? (\d+)$/;

/** rtmpd's own count of the connections it refused or closed, by reason (the non-zero ones), from /metrics. */
export async function serverCloses(url: URL): Promise<Record<string, number>> {
  const { stdout } = await execFileAsync('curl', ['-fsS', url.href], { maxBuffer: 64 * 2 ** 20 });
  const closes: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = CLOSE_COUNTERS.exec(line);
    // A peer that hung up mid-handshake: the bench's own check that the port listens, or a client that gave up (counted as its reason).
    if (m && Number(m[2]) > 0 && m[1] !== 'handshake_aborted') {
      const reason = m[1] ?? 'player_stalled';
      closes[reason] = (closes[reason] ?? 0) + Number(m[2]);
    }
  }
  return closes;
}
