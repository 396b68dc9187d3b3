// The operator's /readyz on the real API server: ready once its informers have
// listed what it watches, and not before; an operator that cannot list a
// namespace it was told to watch (no RBAC there) stays unready and says why,
// while /healthz stays 200 (the kubelet must not restart it for that).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubectl } from '../../e2e/cluster/kube.ts';
import { installCrd, startOperator, startOperators, suffix, type OperatorFixture, type OperatorProcess } from './harness.ts';

const id = suffix();
const ns = `rtmp-ready-${id}`;
const unbound = `rtmp-unbound-${id}`;
let fixture: OperatorFixture;
let blind: OperatorProcess | undefined;

beforeAll(async () => {
  await installCrd();
  await kubectl(['create', 'namespace', ns]);
  await kubectl(['create', 'namespace', unbound]);
  fixture = await startOperators({ id, watched: [ns] });
}, 120_000);

afterAll(async () => {
  await blind?.stop();
  await fixture?.teardown();
  await kubectl(['delete', 'namespace', unbound, '--wait=false', '--ignore-not-found'], { allowFailure: true });
}, 60_000);

describe('/readyz', () => {
  it('is 503 naming the cause while the informers cannot list a watched namespace, and 200 once they have listed', async () => {
    const ready = fixture.operators[0]!;
    await eventually('the operator with its RBAC ready', async () =>
      (await fetch(`${ready.metrics}/readyz`)).status === 200 ? true : undefined,
    );
    // The same operator, also told to watch a namespace its ServiceAccount may not list.
    const args = ready.child.spawnargs.slice(3).map((a) => (a.startsWith('--namespaces=') ? `--namespaces=${ns},${unbound}` : a));
    blind = await startOperator(args);
    await eventually('the list refused', async () => (/is forbidden: User/.test(blind!.logs()) ? true : undefined));
    const res = await fetch(`${blind.metrics}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('informers not synced');
    expect((await fetch(`${blind.metrics}/healthz`)).status).toBe(200);
    expect(blind.child.exitCode).toBeNull();
  });
});
