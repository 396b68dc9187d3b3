// The rtmpd-operator chart as the tests see it: where it is, which version it
// must carry, and `helm template` output parsed into objects.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { helm, type RunOptions } from '../cluster/kube.ts';

export const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const chartDir = join(repo, 'charts/rtmpd-operator');
/** The Kubernetes version helm renders for offline (the local control plane's). */
export const kubeVersion = '1.36.3';
/** The one version the chart, its appVersion and the image tags follow. */
export const packageVersion = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Parses a multi-document YAML stream, dropping empty documents. */
export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML from helm: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart (with --kube-version: helm's offline default is older). */
export async function template(release: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<K8sObject[]> {
  const { stdout } = await helm(['template', release, chartDir, '--kube-version', kubeVersion, ...args], opts);
  return parseManifests(stdout);
}

/** The one object of that kind (and name, if given); throws when absent or ambiguous. */
export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  }
  return found[0] as K8sObject;
}

/** Every value the chart can turn on at once (the monitoring APIs must be offered too). */
export const allFeatures: string[] = [
  '--api-versions',
  'monitoring.coreos.com/v1',
  '--set',
  'metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboards.enabled=true',
  '--set',
  'metrics.serviceMonitor.labels.release=prometheus,prometheusRule.labels.release=prometheus',
  '--set',
  'replicaCount=2,leaderElection.enabled=true,logLevel=debug',
  '--set',
  'podAnnotations.example\\.com/team=media,podLabels.tier=control',
  '--set-json',
  'imagePullSecrets=[{"name":"regcred"}]',
  '--set',
  'networkPolicy.enabled=true',
  '--set-json',
  'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
  '--set-json',
  'rtmpServers=[{"name":"live","spec":{"replicas":1,"storage":{"reclaimPolicy":"Delete"}}}]',
];
