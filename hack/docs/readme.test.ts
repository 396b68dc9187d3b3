// What the user's documents promise that a machine can check in a second: every
// link and every repository path the README names in code resolves, and the README's examples of API answers, webhook bodies, config
// files and RtmpServer specs parse with the schemas the code answers and reads by,
// field for field (an example that lacks a field the API sends, or names one it
// does not, fails); every API path it shows is a route of the OpenAPI document,
// every metric it names is one rtmpd or the operator serves (each from its own registry), each in
// the tables of the one that serves it, its alerts are the chart's rules, and the log
// lines its Troubleshooting quotes are messages rtmpd's sources write.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../operator/src/api/rtmpserver.ts';
import { createMetrics } from '../../operator/src/controller/metrics.ts';
import { PERMISSIONS_CLAIM } from '../../rtmpd/src/auth/jwt.ts';
import { configKeys, loadConfig, parseConfig } from '../../rtmpd/src/config.ts';
import { forwardViewSchema } from '../../rtmpd/src/forward/forward-view.ts';
import type { Forwards } from '../../rtmpd/src/forward/forwards.ts';
import { recordingListSchema } from '../../rtmpd/src/http/recordings-api.ts';
import { streamListSchema } from '../../rtmpd/src/http/streams-api.ts';
import { RtmpdMetrics } from '../../rtmpd/src/telemetry/metrics.ts';
import type { Tls } from '../../rtmpd/src/tls/tls.ts';
import type { Transcodes } from '../../rtmpd/src/transcode/transcodes.ts';
import { webhookEventSchema } from '../../rtmpd/src/webhooks/events.ts';
import { readmeBlocks, readmeYamlMappings, readRepoFile as read, repo as root, shownRtmpServers } from './examples.ts';

/** rtmpd's sources, tests aside, one after another. */
function rtmpdSources(dir = resolve(root, 'rtmpd/src')): string {
  return readdirSync(dir, { withFileTypes: true })
    .map((entry) => {
      const path = resolve(dir, entry.name);
      if (entry.isDirectory()) return rtmpdSources(path);
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? readFileSync(path, 'utf8') : '';
    })
    .join('\n');
}

/**
 * The metrics a scrape of rtmpd serves, each named once, with every family that
 * only some servers have on: RTMPS, forwards, transcodes, a pod of a fleet
 * (their counts are read at the scrape; all zero here).
 */
async function rtmpdMetricNames(): Promise<Set<string>> {
  const metrics = new RtmpdMetrics({ maxStreams: 1 });
  const none = {};
  metrics.watchTls({
    certificate: { value: { notAfter: 0 }, reloads: none },
    handshakes: { stats: { handshakes: none, handshakeFailures: none } },
    listeners: [],
  } as unknown as Tls);
  metrics.watchForwards({ stats: { attempts: 0, failures: none }, countsByState: () => none } as unknown as Forwards);
  metrics.watchTranscodes({ stats: { starts: 0, failures: none, refused: none }, countsByState: () => none } as unknown as Transcodes);
  metrics.watchFleet(() => ({
    pods: 0,
    claims: 0,
    relays: 0,
    relaysStarted: 0,
    relayFailures: {},
    leaseWrites: 0,
    abandonedLeasesDeleted: { pod: 0, claim: 0 },
  }));
  const scraped = (await metrics.scrape()).toString();
  metrics.close();
  return new Set([...scraped.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
}

type OperatorRegistry = ReturnType<typeof createMetrics>['registry'];
/** prom-client as the operator loads it (the operator's dependency, not these tests'). */
const operatorPromClient = createRequire(resolve(root, 'operator/package.json'))('prom-client') as {
  Registry: new () => OperatorRegistry;
  collectDefaultMetrics: (config: { register: OperatorRegistry }) => void;
};
const metricNames = (registry: OperatorRegistry) => registry.getMetricsAsArray().map((metric) => metric.name);

/** The operator's own metrics: those of its registry but prom-client's default process and Node.js ones. */
function operatorMetricNames(): Set<string> {
  const defaults = new operatorPromClient.Registry();
  operatorPromClient.collectDefaultMetrics({ register: defaults });
  const prometheusDefaults = new Set(metricNames(defaults));
  return new Set(metricNames(createMetrics('rtmpserver').registry).filter((name) => !prometheusDefaults.has(name)));
}

/** The metric names in the first cells of the tables between two headings; `a_{b,c}_d` stands for a_b_d and a_c_d. */
function tableRowNames(text: string, from: string, to: string): Set<string> {
  const section = text.slice(text.indexOf(from), text.indexOf(to));
  const cells = [...section.matchAll(/^\| (`[^|]*)/gm)].map((m) => m[1]!);
  return new Set(cells.flatMap((cell) => [...cell.matchAll(/`([a-z0-9_{},]+)`/g)].flatMap((m) => expandBraces(m[1]!))));
}

function expandBraces(name: string): string[] {
  const braces = /^(.*?)\{([^}]*)\}(.*)$/.exec(name);
  if (!braces) return [name];
  const [, before, choices, after] = braces as unknown as [string, string, string, string];
  return choices.split(',').flatMap((choice) => expandBraces(`${before}${choice}${after}`));
}

const documents = ['README.md', 'docs/performance.md', 'operator/README.md', 'charts/rtmpd-operator/README.md'];

/** The document's lines outside fenced code blocks, with their line numbers. */
function prose(text: string): { line: string; number: number }[] {
  let fenced = false;
  return text.split('\n').flatMap((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return [];
    }
    return fenced ? [] : [{ line, number: i + 1 }];
  });
}

/** The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function headingAnchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { line } of prose(text)) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const repeats = seen.get(slug) ?? 0;
    seen.set(slug, repeats + 1);
    anchors.add(repeats === 0 ? slug : `${slug}-${repeats}`);
  }
  return anchors;
}

const anchorsOf = new Map<string, Set<string>>();
const anchorsIn = (path: string): Set<string> => anchorsOf.get(path) ?? anchorsOf.set(path, headingAnchors(read(path))).get(path)!;

/** Every link of a document that does not resolve: `#anchor`, a relative path, or `path.md#anchor`. */
function brokenLinks(path: string): string[] {
  const broken: string[] = [];
  for (const { line, number } of prose(read(path))) {
    for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [file, anchor] = target!.split('#') as [string, string | undefined];
      const linked = file === '' ? path : `${dirname(path)}/${file}`;
      if (!existsSync(resolve(root, linked))) broken.push(`${path}:${number}: ${target} (no such file)`);
      else if (anchor !== undefined && !anchorsIn(linked).has(anchor)) broken.push(`${path}:${number}: ${target} (no such heading)`);
    }
  }
  return broken;
}

/** Every key path of a JSON value (array elements as []), sorted: the shape an example shows. */
const shape = (value: unknown): string[] => [...new Set(paths(value, ''))].sort();

function paths(value: unknown, at: string): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => paths(v, `${at}[]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [`${at}.${k}`, ...paths(v, `${at}.${k}`)]);
}

/** The example parses with the schema, and the schema's output has exactly its fields (zod drops unknown ones and adds defaults). */
function expectAnswerShape(example: unknown, schema: { parse: (value: unknown) => unknown }): void {
  expect(shape(schema.parse(example))).toEqual(shape(example));
}

describe('links', () => {
  it('resolve: every #anchor names a heading, every relative path exists', () => {
    expect(documents.flatMap(brokenLinks)).toEqual([]);
  });

  it("and the README's file and folder names in code (`rtmpd/src/mp4/`) exist, build output aside", () => {
    const named = [...read('README.md').matchAll(/`((?:rtmpd|operator|hack|e2e|charts|docs|examples|crds)\/[\w./-]*)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThanOrEqual(30);
    expect(named.filter((path) => !path.includes('/dist/') && !existsSync(resolve(root, path)))).toEqual([]);
  });

  it('are checked against the anchors GitHub makes', () => {
    expect([
      ...headingAnchors('# A fleet: N replicas behave as one server\n## Webhooks\n### Webhooks\n```\n# not a heading\n```\n'),
    ]).toEqual(['a-fleet-n-replicas-behave-as-one-server', 'webhooks', 'webhooks-1']);
  });
});

describe("the README's examples", () => {
  const json = readmeBlocks('json');

  it('of the stream list have the fields GET /api/v1/rtmp/streams answers with', () => {
    const examples = json.filter((b) => b.startsWith('{"streams"'));
    expect(examples).toHaveLength(1);
    expectAnswerShape(JSON.parse(examples[0]!), streamListSchema);
  });

  it("of a stream's forwards have the fields the stream list gives them", () => {
    const examples = json.filter((b) => b.startsWith('"forwards"'));
    expect(examples).toHaveLength(1);
    const { forwards } = JSON.parse(`{${examples[0]!}}`) as { forwards: unknown[] };
    for (const forward of forwards) expectAnswerShape(forward, forwardViewSchema);
  });

  it('of the recordings list have the fields GET /api/v1/rtmp/recordings answers with', () => {
    const examples = json.filter((b) => b.startsWith('{"recordings"'));
    expect(examples).toHaveLength(1);
    expectAnswerShape(JSON.parse(examples[0]!), recordingListSchema);
  });

  it('of webhook bodies have the fields each event is sent with', () => {
    const bodies = json
      .filter((b) => b.startsWith('{"type"'))
      .flatMap((b) => b.split(/\n\n/))
      .map((b) => JSON.parse(b) as { type: string });
    expect(bodies.map((b) => b.type)).toEqual(['stream.started', 'stream.ended', 'recording.completed']);
    for (const body of bodies) expectAnswerShape(body, webhookEventSchema);
  });

  it('of config files load as rtmpd config files do', () => {
    const configs = readmeYamlMappings().filter((d) => Object.keys(d).some((k) => (configKeys as string[]).includes(k)));
    expect(configs.length).toBeGreaterThanOrEqual(4);
    for (const config of configs) expect(() => parseConfig(config), JSON.stringify(config)).not.toThrow();
  });

  it('of rules given as flags load as rtmpd reads those flags', () => {
    const flags = [...read('README.md').matchAll(/(--[a-z-]+-rules) '([^']+)'/g)].map(([, flag, value]) => [flag!, value!]);
    expect(flags.length).toBeGreaterThanOrEqual(4);
    for (const argv of flags) expect(() => loadConfig(argv, {}), argv.join(' ')).not.toThrow();
  });

  it("of metrics name rtmpd's and the operator's, and each one's tables have a row for each metric it serves", async () => {
    const rtmpd = await rtmpdMetricNames();
    const operator = operatorMetricNames();
    const readme = read('README.md');
    // A name with `*` after it is a family; the JWT claim shares rtmpd's prefix.
    const named = [...readme.matchAll(/\b(rtmpd_[a-z0-9_]+)(?![a-z0-9_*])/g)].map((m) => m[1]!);
    const notMetrics = [...new Set(named)].filter((name) => !rtmpd.has(name) && !operator.has(name) && name !== PERMISSIONS_CLAIM);
    expect(notMetrics.sort(), 'named in the README, served by neither').toEqual([]);
    expect(rtmpd.size).toBeGreaterThanOrEqual(100);
    expect(operator.size).toBeGreaterThanOrEqual(15);
    const rtmpdRows = tableRowNames(readme, '\n### Prometheus metrics', "\n### The operator's metrics");
    const operatorRows = tableRowNames(readme, "\n### The operator's metrics", '\n### Tracing');
    expect([...rtmpdRows].sort(), "rtmpd's tables: a row for each metric rtmpd serves, and no other").toEqual([...rtmpd].sort());
    expect([...operatorRows].sort(), "the operator's table: a row for each of its own metrics, and no other").toEqual([...operator].sort());
  });

  it('of API paths are routes of the OpenAPI document', () => {
    const { paths } = parseYaml(read('docs/api/openapi.yaml')) as { paths: Record<string, unknown> };
    const routes = Object.keys(paths)
      .filter((route) => /^\/(api|fleet)\//.test(route))
      .map((route) => new RegExp(`^${route.replace(/\{\w+\}/g, '[^/]+')}$`));
    // `:stream_id` stands for a value; a path cut short (`/api/v1/`, `/api/v1/auth/...`) names a group.
    const shown = [...read('README.md').matchAll(/\/(?:api|fleet)\/v1\/[\w%.:/-]*/g)]
      .map(([path]) => path.replace(/:\w+/g, 'x'))
      .filter((path) => !/(\/|\.\.\.)$/.test(path));
    expect(shown.length).toBeGreaterThanOrEqual(20);
    expect([...new Set(shown)].filter((path) => !routes.some((route) => route.test(path)))).toEqual([]);
  });

  it("of alerts are the chart's rules, each with its severity", () => {
    const { groups } = parseYaml(read('charts/rtmpd-operator/files/alerts/rtmpd.yaml')) as {
      groups: { rules: { alert?: string; labels?: { severity?: string } }[] }[];
    };
    const rules = groups.flatMap((g) => g.rules).map((r) => `${r.alert} ${r.labels?.severity}`);
    const readme = read('README.md');
    const table = readme.slice(readme.indexOf('\n### Alerts'), readme.indexOf('\n## Performance'));
    const rows = [...table.matchAll(/^\| `(\w+)` \|.*\| (\w+) \|$/gm)].map(([, alert, severity]) => `${alert} ${severity}`);
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.sort()).toEqual(rules.sort());
  });

  it('of log lines, in Troubleshooting, are lines rtmpd writes', () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('\n## Troubleshooting'), readme.indexOf('\n## Development and tests')).replace(/\s+/g, ' ');
    // A quoted line follows "the log says", "the log line", "logs", "logged as" and the like.
    const quoted = [...section.matchAll(/\b(?:logs?(?: line| says| has)?|logged as) `([^`]+)`/g)].map((m) => m[1]!);
    const sources = rtmpdSources();
    // A message built from a template literal matches with any text for each `${...}`.
    const templates = sources
      .split('\n')
      .flatMap((line) => [...line.matchAll(/`([^`]*\$\{[^`]*)`/g)])
      .map((m) => m[1]!.split(/\$\{[^}]*\}/))
      .filter((parts) => parts.join('').length >= 8)
      .map((parts) => new RegExp(`^${parts.map((part) => part.replace(/[.*+?^$()[\]{}|\\]/g, '\\$&')).join('.+')}$`));
    expect(quoted.length).toBeGreaterThanOrEqual(10);
    const unwritten = quoted.filter((line) => !sources.includes(line) && !templates.some((template) => template.test(line)));
    expect(unwritten, 'quoted as a log line, not written by rtmpd').toEqual([]);
  });

  it('of RtmpServer specs, and those of examples/, parse as the operator reads them, every field known', () => {
    const servers = shownRtmpServers();
    expect(servers.length).toBeGreaterThanOrEqual(6);
    for (const { shownIn, server } of servers) {
      // The schema strips a field it does not know (and the API server prunes it): each must survive.
      const kept = new Set(shape(parseSpec(server.spec)));
      expect(
        shape(server.spec).filter((path) => !kept.has(path)),
        shownIn,
      ).toEqual([]);
    }
  });
});
