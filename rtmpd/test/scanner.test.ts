// A real internet scanner against every listener rtmpd exposes: nmap's
// service detection at its highest intensity (its whole probe set: HTTP,
// TLS, RTSP, SMB, RPC, SIP, random binary, each also inside TLS on the ports
// that speak it) and its safe HTTP scripts plus http-enum's few thousand
// paths, against RTMP, RTMPS, HTTP and HTTPS; at the same time the same
// probes from the load balancer rtmpd trusts for the PROXY protocol, so that
// every probe is taken for a bad PROXY header. Then rtmpd must still be up
// and serve ffmpeg, hold no connection the scans opened, have logged each
// refusal as a refusal and no error, have stayed within a memory bound, and
// have answered every HTTP request the scripts made (nmap's --script-trace)
// and every service probe (nmap's fingerprint-strings) with no 5xx at all (a
// method a path does not take, a scanner's TRACE or PROPFIND too, is a 405)
// and its 4xx with the JSON error body.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemOf } from './fuzz/http.ts';
import { checkStillServes, rssMiB } from './fuzz/network.ts';
import { selfSigned } from './support/certificates.ts';
import { metric, runCommand, startServer, stopAll, tempDir, type RunningServer } from './support/processes.ts';
import { scriptAnswers, type ScannedAnswer, type TracedAnswer } from './support/nmap-trace.ts';
import { eventually } from './support/wait.ts';

/** The source rtmpd takes PROXY headers from: nmap binds its connections to it for the second scan. */
const BALANCER = '127.0.0.2';
/**
 * The peak RSS the scans may add to what rtmpd had when it was ready: the
 * code and buffers that the first connections of every kind (TLS, HTTP,
 * RTMP, the console's files) bring in, and garbage V8 has yet to collect;
 * the scans measured about 35 MiB here.
 */
const SCAN_RSS_MIB = 64;
/**
 * nmap's scripts: those in the safe category that send HTTP (not those that
 * ask other hosts on the internet about the target), forced onto ports nmap
 * does not recognise as HTTP ('+'), and http-enum's guessed paths.
 */
const SCRIPTS = '+(http-* and safe and not external),+http-enum';
/**
 * Both scans take about 40 s here. A server that leaves connections open
 * makes nmap wait on them past this (seen with the RTMP listener's sockets
 * never destroyed), and the scan fails.
 */
const SCAN_TIMEOUT_MS = 100_000;
/**
 * The script connections and answers the trace may leave unread (see
 * ScriptAnswers.skipped): none in the scans measured here, of about 3,000
 * connections; a trace read wrong would leave far more.
 */
const MAX_SKIPPED = 20;

let server: RunningServer;
let ports: number[];
let readyMiB: number;
/** What nmap printed: its report, its scripts' trace, the two scans one after the other. */
let scanned: { code: number | null; stdout: string }[];

beforeAll(async () => {
  const dir = await tempDir('rtmpd-scanner-');
  const cert = await selfSigned(join(dir, 'cert'));
  server = await startServer([
    ...['--rtmps-bind', '127.0.0.1:0', '--https-bind', '127.0.0.1:0', '--tls-cert-file', cert.certFile, '--tls-key-file', cert.keyFile],
    ...['--proxy-protocol', 'rtmp,rtmps,http,https', '--proxy-protocol-from', `${BALANCER}/32`],
    ...['--recording-enabled', 'false'],
  ]);
  const ready = server.logs.find((line) => line.msg === 'rtmpd ready') as { rtmps: string; https: string };
  const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  ports = [server.rtmpPort, portOf(ready.rtmps), server.httpPort, portOf(ready.https)];
  readyMiB = rssMiB(server.child.pid!).now;
  const nmap = (flags: string[]) =>
    runCommand('nmap', ['-Pn', '-sV', '--version-intensity', '9', ...flags, '-p', ports.join(','), '127.0.0.1'], SCAN_TIMEOUT_MS);
  scanned = await Promise.all([
    nmap(['--script', SCRIPTS, '--script-trace']),
    // -e: the address is one of loopback's, which nmap cannot tell without the interface.
    nmap(['-S', BALANCER, '-e', 'lo']),
  ]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  stopAll();
});

/** rtmpd's end of the connections to its listeners that are not closed (TIME-WAIT is closed: only the kernel holds it), from ss. */
async function openConnections(): Promise<string[]> {
  const filter = `( ${ports.map((port) => `sport = :${port}`).join(' or ')} )`;
  const { code, stdout, stderr } = await runCommand('ss', ['-tanH', 'state', 'all', filter]);
  if (code !== 0) throw new Error(`ss exited ${code}: ${stderr}`);
  return stdout.split('\n').filter((line) => line.trim() && !/^(LISTEN|TIME-WAIT)\s/.test(line));
}

/** The HTTP answers in a probe's text, cut at each status line; the body follows the first blank line. */
function cutAtStatusLines(text: string): TracedAnswer[] {
  const starts = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)];
  return starts.map((match, i) => {
    const answer = text.slice(match.index, starts[i + 1]?.index);
    const end = answer.indexOf('\n\n');
    const head = end < 0 ? answer : answer.slice(0, end);
    return {
      status: Number(match[1]),
      contentType: /^content-type: *([^\r\n]*)/im.exec(head)?.[1] ?? '',
      body: Buffer.from(end < 0 ? '' : answer.slice(end + 2), 'latin1'),
    };
  });
}

/**
 * The HTTP answers to nmap's service probes, from its fingerprint-strings
 * report: "|   GetRequest:", then the answer's lines indented under it, its
 * blank lines left out (the head ends at the first line that is no header).
 * No probe is a HEAD, so each answer is a GET's as problemOf reads it.
 */
function probeAnswers(stdout: string): ScannedAnswer[] {
  const probes: { name: string; text: string }[] = [];
  let inHead = false;
  for (const line of stdout.split('\n')) {
    const named = /^\|\s{3}(\S+):\s*$/.exec(line);
    if (named) probes.push({ name: named[1]!, text: '' });
    const answerLine = /^\|_?\s{5}(.*)$/s.exec(line)?.[1];
    const probe = probes.at(-1);
    if (answerLine === undefined || !probe) continue;
    if (/^HTTP\/1\.[01] \d{3} /.test(answerLine)) inHead = true;
    else if (inHead && !/^[\w-]+: /.test(answerLine)) {
      inHead = false;
      probe.text += '\n';
    }
    probe.text += `${answerLine}\n`;
  }
  return probes.flatMap(({ name, text }) => cutAtStatusLines(text).map((answer) => ({ from: `probe ${name}`, method: 'GET', answer })));
}

describe('rtmpd scanned by nmap on every listener', () => {
  it('ran both scans to the end', () => {
    for (const { code, stdout } of scanned) {
      expect(code, stdout.slice(-2000)).toBe(0);
      expect(stdout).toMatch(/Nmap done: 1 IP address \(1 host up\)/);
    }
  });

  it('holds no connection the scans opened', async () => {
    await eventually('every scan connection closed', async () => (await openConnections()).length === 0, 20_000).catch(async () => {
      expect(await openConnections()).toEqual([]);
    });
    expect(await metric(server, 'rtmpd_connections')).toBe(0);
  });

  it('answered no HTTP request with a 5xx, and every 4xx with the JSON error body', () => {
    const traced = scriptAnswers(scanned[0]!.stdout);
    const answers = [...traced.answers, ...probeAnswers(scanned[0]!.stdout)];
    // Shown only when a check fails: what was read, and what was not.
    const tally = JSON.stringify({
      skipped: traced.skipped,
      answers: Object.entries(
        Object.groupBy(answers, ({ from, method, answer }) => `${from.startsWith('probe') ? from : 'script'} ${method} ${answer.status}`),
      ).map(([read, each]) => `${read}: ${each!.length}`),
    });
    // http-enum alone asks for a few thousand paths: a trace that reads as no answers would prove nothing.
    expect(answers.length, tally).toBeGreaterThan(1000);
    expect(traced.skipped.unbracketedConnections + traced.skipped.cutAnswers, tally).toBeLessThanOrEqual(MAX_SKIPPED);
    expect(traced.unreadable, tally).toEqual([]);
    const problems = answers.flatMap(({ from, method, answer }) => {
      const problem = problemOf({ method, path: '', headers: {} }, answer);
      return problem ? [`${from} (${method}): ${problem}`] : [];
    });
    expect(problems, tally).toEqual([]);
  });

  it('logged every refusal as one, and no error', async () => {
    const afterReady = server.logs.slice(server.logs.findIndex((line) => line.msg === 'rtmpd ready') + 1);
    expect(afterReady.filter((line) => Number(line.level) >= 50 || 'err' in line)).toEqual([]);
    const refusal = /^(rtmp .*, closing|tls handshake failed: .*|proxy protocol: .*|fault log lines dropped)$/;
    expect(afterReady.filter((line) => Number(line.level) >= 40 && !refusal.test(String(line.msg)))).toEqual([]);
    // Each listener took the scans' probes, and counted their refusals.
    expect(await metric(server, 'rtmpd_handshake_failures_total', 'protocol="rtmp"')).toBeGreaterThan(0);
    expect(await metric(server, 'rtmpd_tls_handshake_failures_total', 'reason="not_tls"')).toBeGreaterThan(0);
    expect(await metric(server, 'rtmpd_http_client_errors_total', 'reason="bad_request"')).toBeGreaterThan(0);
    expect(await metric(server, 'rtmpd_connections_refused_total', 'reason="bad_proxy_header"')).toBeGreaterThan(0);
    expect(await metric(server, 'rtmpd_http_connections_refused_total', 'reason="bad_proxy_header"')).toBeGreaterThan(0);
  });

  it(`stayed within ${SCAN_RSS_MIB} MiB of its RSS when ready`, () => {
    const { peak } = rssMiB(server.child.pid!);
    expect(peak).toBeLessThan(readyMiB + SCAN_RSS_MIB);
  });

  it('still serves: ffmpeg publishes and ffprobe plays back after the scans, last (its stream would count in the memory and the logs)', async () => {
    expect(server.child.exitCode).toBeNull();
    await checkStillServes(server);
  });
});
