// The Debian `prometheus` binary (installed by hack/setup.sh) run for a test:
// it scrapes the given targets every second on 127.0.0.1, keeps its data in a
// scratch folder, and is stopped and cleaned up with `stop()`.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.ts';
import { freePort } from './free-port.ts';

export interface ScrapeTarget {
  /** HOST:PORT serving /metrics. */
  address: string;
  /** Labels added to every series of the target (e.g. the pod it stands for). */
  labels?: Record<string, string>;
}

interface QueryResult {
  status: string;
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export interface RunningPrometheus {
  url: string;
  /** An instant query through the HTTP API. */
  query(expr: string): Promise<QueryResult>;
  stop(): Promise<void>;
}

export interface ScrapeOptions {
  /** Keep a scraped series' own label where a target label has its name (a ServiceMonitor's honorLabels), rather than renaming it exported_<name>. */
  honorLabels?: boolean;
}

function config(job: string, targets: ScrapeTarget[], ruleFiles: string[], { honorLabels = false }: ScrapeOptions): string {
  const target = (t: ScrapeTarget) => `      - ${JSON.stringify({ targets: [t.address], labels: t.labels ?? {} })}`;
  return [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    `rule_files: ${JSON.stringify(ruleFiles)}`,
    'scrape_configs:',
    `  - job_name: ${job}`,
    `    honor_labels: ${honorLabels}`,
    '    static_configs:',
    ...targets.map(target),
    '',
  ].join('\n');
}

/** Starts Prometheus scraping `targets` as job `job`, with `ruleFiles` loaded, and waits until it is ready. */
export async function startPrometheus(
  job: string,
  targets: ScrapeTarget[],
  ruleFiles: string[] = [],
  options: ScrapeOptions = {},
): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'flux-prometheus-'));
  await writeFile(join(dir, 'prometheus.yml'), config(job, targets, ruleFiles, options));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (log = (log + text).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await eventually('prometheus ready', async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}\n${log.slice(-3000)}`);
      return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const query = async (expr: string) =>
    (await (await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) })).json()) as QueryResult;
  return { url, query, stop };
}
