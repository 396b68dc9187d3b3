// The operator's command line: one zod schema read by the loader rtmpd uses
// (flags over environment variables over defaults), so --help, defaults and
// the checks come from here alone.
import { bool, ConfigError, decimalNumber, loadOptions, optionsHelp, optionsTable, type OptionSet } from '@flux-rtmpd/rtmpd/options';
import { z } from 'zod';
import { defaultImage, defaultTranscodeImage } from './version.ts';

export { ConfigError };

const bind = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]*):(\d{1,5})$/, 'expected HOST:PORT or :PORT, e.g. :8080 or 127.0.0.1:0')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

export const flagsSchema = z.object({
  namespaces: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .describe('comma-separated namespaces to watch; empty watches all'),
  metricsBind: bind.default(':8080').describe('HOST:PORT for /metrics; the same address as --health-bind serves both'),
  healthBind: bind.default(':8081').describe('HOST:PORT for /healthz and /readyz'),
  metricsAuth: z
    .enum(['none', 'kubernetes'])
    .default('none')
    .describe(
      'kubernetes: /metrics is served over HTTPS and needs a bearer token the API server accepts (TokenReview) of a user allowed get on the non-resource URL /metrics (SubjectAccessReview); 401/403 otherwise; a plain HTTP request to the port gets 400 tls_required, as from a Go server',
    ),
  metricsCertDir: z
    .string()
    .default('')
    .describe(
      'with --metrics-auth=kubernetes: a directory with tls.crt and tls.key (a mounted kubernetes.io/tls Secret) that /metrics is served with, re-read every 2 s (a renewed pair serves new connections; a bad one is logged and the last good one stays); empty: a self-signed certificate made at start',
    ),
  leaderElect: bool.default(false).describe('elect a leader through a coordination.k8s.io Lease so only one replica acts'),
  leaderElectionNamespace: z
    .string()
    .min(1)
    .optional()
    .describe("namespace of the Lease; default: the pod's namespace (POD_NAMESPACE or the service account's), else the kubeconfig's"),
  leaderElectionId: z.string().min(1).default('rtmpd-operator.media.fluxiot.io').describe('name of the Lease'),
  kubeconfig: z
    .string()
    .min(1)
    .optional()
    .describe('kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('log level'),
  workers: decimalNumber(1, 64, { whole: true }).default(2).describe('RtmpServers reconciled at once'),
  requeueSeconds: decimalNumber(1, 3600, { whole: true })
    .default(30)
    .describe(
      "an RtmpServer whose status says something is still to happen (Reconciling or Stalled) is reconciled again after this long, for what no watch sees: a claim of the user's that appears, a Warning Event or a crash that grows old",
    ),
  rtmpdImage: z
    .string()
    .min(1)
    .max(512)
    .default(defaultImage)
    .describe(
      "rtmpd image of every RtmpServer that does not pin spec.image and has no spec.transcode rules; default: rtmpd of the operator's own version",
    ),
  rtmpdTranscodeImage: z
    .string()
    .min(1)
    .max(512)
    .default(defaultTranscodeImage)
    .describe(
      "rtmpd image of every RtmpServer with spec.transcode rules that does not pin spec.image: its ffmpeg has libx264 and the AAC encoder; default: rtmpd's -transcode variant of the operator's own version",
    ),
});

export type Flags = z.infer<typeof flagsSchema>;

// The variables the chart and controller-runtime-based operators use; the
// kubeconfig has none of its own (KUBECONFIG may list several files and is
// read as the default).
const envNames: Partial<Record<keyof Flags, string>> = {
  namespaces: 'WATCH_NAMESPACES',
  metricsBind: 'METRICS_BIND',
  healthBind: 'HEALTH_BIND',
  metricsAuth: 'METRICS_AUTH',
  metricsCertDir: 'METRICS_CERT_DIR',
  leaderElect: 'LEADER_ELECT',
  leaderElectionNamespace: 'LEADER_ELECTION_NAMESPACE',
  leaderElectionId: 'LEADER_ELECTION_ID',
  logLevel: 'LOG_LEVEL',
  workers: 'WORKERS',
  requeueSeconds: 'REQUEUE_SECONDS',
  rtmpdImage: 'RTMPD_IMAGE',
  rtmpdTranscodeImage: 'RTMPD_TRANSCODE_IMAGE',
};

const operatorOptions: OptionSet<typeof flagsSchema> = { schema: flagsSchema, envName: (key) => envNames[key as keyof Flags] };

export interface ParsedFlags {
  flags: Flags;
  help: boolean;
  version: boolean;
}

/** Flags over environment variables over defaults; throws ConfigError naming a bad option. */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedFlags {
  const { options, help, version } = loadOptions(operatorOptions, argv, env);
  return { flags: options, help, version };
}

export const helpText = (): string =>
  optionsHelp(operatorOptions, [
    'Usage: rtmpd-operator [flags]',
    '',
    'Reconciles media.fluxiot.io/v1alpha1 RtmpServer resources into rtmpd workloads, Services,',
    'PersistentVolumeClaims and ConfigMaps, against the current KUBECONFIG or the in-cluster config.',
    'Flags win over the environment variables named below.',
  ]);

/** The flags as a Markdown table, for the operator README (make generate). */
export const flagsTable = (): string => optionsTable(operatorOptions);

/** ":8080" → all interfaces; "127.0.0.1:0" → an ephemeral port. */
export function splitBind(bind: string): { host: string | undefined; port: number } {
  const at = bind.lastIndexOf(':');
  const host = bind.slice(0, at).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port: Number(bind.slice(at + 1)) };
}
