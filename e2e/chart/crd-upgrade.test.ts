// The CRD upgrade step on the real API server. Helm installs the chart's
// crds/ once and never upgrades them; the documented step applies the new CRD
// with `kubectl apply --server-side`, and until then the operator's check
// (operator/src/api/served-schema.ts) finds the served schema older than its
// own and holds its workers back. The CRD is renamed into a group of this run:
// replacing the real one with an older copy would prune fields from the
// RtmpServers other suites create meanwhile on the same API server.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { crdFileName } from '../../operator/src/api/crd.ts';
import { staleReason } from '../../operator/src/api/served-schema.ts';
import { eventually, kubectl, kubectlJson, waitEstablished } from '../cluster/kube.ts';
import { chartDir } from '../lib/chart.ts';

const testGroup = `crd-upgrade-${randomBytes(3).toString('hex')}.e2e.fluxiot.io`;
// Names of its own too: kubectl would otherwise resolve `rtmpserver` (and `rtmp`) to this copy.
const names = { kind: 'CrdUpgradeProbe', listKind: 'CrdUpgradeProbeList', plural: 'crdupgradeprobes', singular: 'crdupgradeprobe' };
const crdName = `${names.plural}.${testGroup}`;
const ns = `crd-upgrade-${randomBytes(3).toString('hex')}`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The chart's CRD as shipped, moved into this run's group. */
function chartCrd(): Json {
  const crd = parse(readFileSync(join(chartDir, 'crds', crdFileName), 'utf8')) as Json;
  crd.metadata.name = crdName;
  crd.spec.group = testGroup;
  crd.spec.names = names;
  return crd;
}

const schemaOf = (crd: Json): Json => crd.spec.versions[0].schema.openAPIV3Schema as Json;

/** The previous release's CRD, as far as this test tells: without spec.hls and status.image. */
function previousCrd(): Json {
  const crd = chartCrd();
  const schema = schemaOf(crd);
  delete schema.properties.spec.properties.hls;
  delete schema.properties.status.properties.image;
  return crd;
}

const applyCrd = async (crd: Json) => {
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=crd-upgrade-e2e', '-f', '-'], { input: stringify(crd) });
  await waitEstablished([`crd/${crdName}`]);
};

const gvk = { group: testGroup, version: 'v1alpha1', kind: names.kind };

/** What the operator's check says of the served schema (the same OpenAPI v3 document it reads). */
async function staleCrd(expected: Json): Promise<string | undefined> {
  const r = await kubectl(['get', '--raw', `/openapi/v3/apis/${testGroup}/v1alpha1`], { allowFailure: true });
  return staleReason(r.code === 0 ? (JSON.parse(r.stdout) as Json) : undefined, gvk, expected, crdName);
}

afterAll(async () => {
  await kubectl(['delete', 'crd', crdName, '--ignore-not-found', '--wait=false'], { allowFailure: true });
  await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false'], { allowFailure: true });
});

describe('upgrading the CRD that Helm does not upgrade', () => {
  it('finds an older served CRD, names what it lacks, and sees the new schema served once the upgrade step applied it', async () => {
    const expected = schemaOf(chartCrd());

    expect(await staleCrd(expected)).toMatch(/does not serve CrdUpgradeProbe/);

    await applyCrd(previousCrd());
    const stale = await eventually('the previous schema served', async () => {
      const why = await staleCrd(expected);
      return why?.includes('lacks') ? why : undefined;
    });
    expect(stale).toBe(
      `the CRD ${crdName} is older than this operator: it lacks spec.hls, status.image (the API server would drop them); ` +
        'apply the CRD of this release (kubectl apply --server-side -f crds/)',
    );
    // What the check protects against: a write that does not ask for strict
    // field validation (as the operator's server-side applies) loses the new field.
    await kubectl(['create', 'namespace', ns]);
    const server = {
      apiVersion: `${testGroup}/v1alpha1`,
      kind: names.kind,
      metadata: { name: 'probe', namespace: ns },
      spec: { hls: {} },
    };
    const create = ['create', '--dry-run=server', '--validate=ignore', '-f', '-'];
    const pruned = await kubectlJson<Json>(create, { input: JSON.stringify(server) });
    expect(pruned.spec.hls).toBeUndefined();

    // The upgrade step (charts/rtmpd-operator/README.md): apply the release's CRD server-side.
    await applyCrd(chartCrd());
    await eventually('the new schema served', async () => ((await staleCrd(expected)) === undefined ? true : undefined));
    const kept = await kubectlJson<Json>(create, { input: JSON.stringify(server) });
    expect(kept.spec.hls).toBeDefined();
  }, 120_000);
});
