// make bench: node --conditions=source hack/bench/main.ts [options]
// Runs the load/latency benchmark against rtmpd, node-media-server and
// nginx-rtmp and prints the table; see --help.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runBench } from './bench.ts';
import { DEFAULT_LOADGEN_PROCESSES } from './loadgen-processes.ts';
import { formatReport, writeReport } from './report.ts';
import { OBS_STYLE, type PublisherStyle } from './rtmp-peer.ts';
import { DEFAULT_SCENARIOS, parseScenario } from './scenarios.ts';
import { REPO_ROOT, SERVER_NAMES, type ServerName } from './servers.ts';

const HELP = `Usage: node --conditions=source hack/bench/main.ts [options]

  --servers <list>     servers to run, in order (default ${SERVER_NAMES.join(',')})
  --scenarios <list>   scenario ids (default ${DEFAULT_SCENARIOS.join(',')})
                       <streams>x<players>[@360p|@720p][/flv|/mix|/hls|/llhls][+rec][+snap[<s>]] or idle<connections>
  --duration <s>       measured seconds per scenario (default 20)
  --warmup <s>         seconds after everyone connected before measuring (default 5)
  --rounds <n>         runs of each load scenario, the servers taking turns; the
                       table shows each server's median-CPU run (default 1)
  --publisher-chunk-size <bytes>|server
                       the publishers' outbound chunk size (default 4096, as OBS;
                       librtmp-based encoders and cameras keep 128; server adopts
                       the server's, as FFmpeg); a scenario's +c<bytes> overrides it
  --publisher-nagle on|off
                       Nagle's algorithm on the publishers' sockets (default on, as
                       OBS and FFmpeg leave it; librtmp turns it off)
  --publisher-writes message|chunk
                       one socket write per message as it is produced (default),
                       or per chunk as librtmp's RTMP_SendPacket does
  --loadgen-processes <n>
                       load-generator worker processes, each running a share of
                       the publishers and players (default ${DEFAULT_LOADGEN_PROCESSES}, one per core
                       of a 2-core machine)
  --proxy <command>    run every RTMP connection of the load generator through a TCP
                       relay started as <command> <listen-port> <server-port> (split at
                       spaces; it listens on 127.0.0.1) and report its CPU and read and
                       write system calls; hack/bench/floor/ has a Node and a C one
  --profile            run rtmpd with --cpu-prof and print its top self-time functions
  --keep               keep the servers' temp directories (logs)
  --out <dir>          fixtures, profiles and results (default .bench)
  -h, --help

Environment: BENCH_RTMPD_BIN=<path to rtmpd/bin/rtmpd.js> runs another build of
rtmpd (e.g. a git worktree of main) to compare two builds under the same load;
BENCH_LOADGEN_NODE_FLAGS=<node flags> starts each load-generator process with them
(--cpu-prof --cpu-prof-dir=<dir> profiles them).
`;

const { values } = parseArgs({
  options: {
    servers: { type: 'string' },
    scenarios: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    'publisher-chunk-size': { type: 'string' },
    'publisher-nagle': { type: 'string' },
    'publisher-writes': { type: 'string' },
    'loadgen-processes': { type: 'string' },
    proxy: { type: 'string' },
    profile: { type: 'boolean' },
    keep: { type: 'boolean' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function parsePublisherStyle(chunkSize: string | undefined, nagle: string | undefined, writes: string | undefined): PublisherStyle {
  const style = { ...OBS_STYLE };
  if (chunkSize !== undefined) {
    style.chunkSize = chunkSize === 'server' ? 'server' : Number(chunkSize);
    if (style.chunkSize !== 'server' && !(Number.isInteger(style.chunkSize) && style.chunkSize >= 1 && style.chunkSize <= 0x7fffffff))
      throw new Error(`--publisher-chunk-size: expected 1..2147483647 or server, got ${chunkSize}`);
  }
  if (nagle !== undefined) {
    if (nagle !== 'on' && nagle !== 'off') throw new Error(`--publisher-nagle: expected on or off, got ${nagle}`);
    style.nagle = nagle === 'on';
  }
  if (writes !== undefined) {
    if (writes !== 'message' && writes !== 'chunk') throw new Error(`--publisher-writes: expected message or chunk, got ${writes}`);
    style.writes = writes;
  }
  return style;
}

const servers = (values.servers ?? SERVER_NAMES.join(',')).split(',').map((s) => s.trim()) as ServerName[];
for (const s of servers) if (!SERVER_NAMES.includes(s)) throw new Error(`unknown server ${s} (have ${SERVER_NAMES.join(', ')})`);
const scenarios = (values.scenarios ?? DEFAULT_SCENARIOS.join(',')).split(',').map((s) => parseScenario(s.trim()));
const outDir = values.out ?? join(REPO_ROOT, '.bench');
const loadgenProcesses = Number(values['loadgen-processes'] ?? DEFAULT_LOADGEN_PROCESSES);
if (!(Number.isInteger(loadgenProcesses) && loadgenProcesses >= 1))
  throw new Error(`--loadgen-processes: expected a whole number of 1 or more, got ${values['loadgen-processes']}`);
const publisherStyle = parsePublisherStyle(values['publisher-chunk-size'], values['publisher-nagle'], values['publisher-writes']);

const report = await runBench(
  {
    servers,
    scenarios,
    warmupSeconds: Number(values.warmup ?? 5),
    durationSeconds: Number(values.duration ?? 20),
    rounds: Number(values.rounds ?? 1),
    loadgenProcesses,
    publisherStyle,
    ...(values.proxy ? { proxy: values.proxy } : {}),
    outDir,
    profile: values.profile === true,
    keep: values.keep === true,
    log: (line) => process.stderr.write(`${line}\n`),
  },
  `node --conditions=source hack/bench/main.ts ${process.argv.slice(2).join(' ')}`.trim(),
);
process.stdout.write(`\n${formatReport(report)}\n`);
const written = writeReport(report, outDir);
process.stdout.write(`\nresults: ${written.json}\nchart: ${written.svg}\n`);
process.exit(0);
