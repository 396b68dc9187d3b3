// The operator's command line. --help is generated from the same table.
import { parseArgs } from 'node:util';

export interface Flags {
  namespaces: string[];
  metricsBind: string;
  healthBind: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  kubeconfig?: string;
  logLevel: string;
  workers: number;
  help: boolean;
  version: boolean;
}

const table = [
  ['namespaces', 'string', '', 'comma-separated namespaces to watch; empty watches all (env WATCH_NAMESPACES)'],
  ['metrics-bind', 'string', ':8080', 'HOST:PORT for /metrics (env METRICS_BIND); the same address as --health-bind serves both'],
  ['health-bind', 'string', ':8081', 'HOST:PORT for /healthz and /readyz (env HEALTH_BIND)'],
  [
    'leader-elect',
    'boolean',
    'false',
    'elect a leader through a coordination.k8s.io Lease so only one replica acts (env LEADER_ELECT=true)',
  ],
  [
    'leader-election-namespace',
    'string',
    '',
    "namespace of the Lease; default: the pod's namespace (POD_NAMESPACE or the service account's), else the kubeconfig's",
  ],
  ['leader-election-id', 'string', 'rtmpd-operator.media.fluxiot.io', 'name of the Lease'],
  ['kubeconfig', 'string', '', 'kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account'],
  ['log-level', 'string', 'info', 'fatal, error, warn, info, debug or trace (env LOG_LEVEL)'],
  ['workers', 'string', '2', 'RtmpServers reconciled at once'],
] as const;

export function helpText(): string {
  return [
    'Usage: rtmpd-operator [flags]',
    '',
    'Reconciles media.fluxiot.io/v1alpha1 RtmpServer resources into rtmpd Deployments, Services,',
    'PersistentVolumeClaims and ConfigMaps, against the current KUBECONFIG or the in-cluster config.',
    '',
    'Flags:',
    ...table.map(
      ([name, type, def, help]) => `  --${name}${type === 'string' ? ' <value>' : ''}\n      ${help}${def ? ` (default ${def})` : ''}`,
    ),
    '  -h, --help\n      print this help',
    '  --version\n      print the version',
    '',
  ].join('\n');
}

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): Flags {
  const { values: parsed } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...Object.fromEntries(table.map(([name, type]) => [name, { type }])),
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  const values = parsed as Record<string, string | boolean | undefined>;
  const str = (k: string): string | undefined => {
    const v = values[k];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const workers = Number(str('workers') ?? '2');
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got ${str('workers')}`);
  const leaderElectEnv = env.LEADER_ELECT === 'true';
  return {
    namespaces: (str('namespaces') ?? env.WATCH_NAMESPACES ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    metricsBind: str('metrics-bind') ?? env.METRICS_BIND ?? ':8080',
    healthBind: str('health-bind') ?? env.HEALTH_BIND ?? ':8081',
    leaderElect: values['leader-elect'] === true || leaderElectEnv,
    leaderElectionNamespace: str('leader-election-namespace'),
    leaderElectionId: str('leader-election-id') ?? 'rtmpd-operator.media.fluxiot.io',
    kubeconfig: str('kubeconfig'),
    logLevel: str('log-level') ?? env.LOG_LEVEL ?? 'info',
    workers,
    help: values.help === true,
    version: values.version === true,
  };
}

/** ":8080" → all interfaces; "127.0.0.1:0" → an ephemeral port. */
export function splitBind(bind: string): { host: string | undefined; port: number } {
  const at = bind.lastIndexOf(':');
  const host = bind.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(bind.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected HOST:PORT or :PORT, got ${bind}`);
  return { host: host || undefined, port };
}
