// The alert rules and the dashboard as files: promtool validates and
// unit-tests the rules; the dashboard is checked for what an import needs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const CHART = resolve(import.meta.dirname, '../../charts/rtmpd-operator');
const promtool = (...args: string[]) => spawnSync('promtool', args, { encoding: 'utf8', cwd: join(CHART, 'files/alerts') });

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const run = promtool('check', 'rules', 'rtmpd.yaml');
    expect(run.error, 'promtool comes from the Debian package prometheus (hack/setup.sh)').toBeUndefined();
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    const run = promtool('test', 'rules', 'tests/rtmpd.test.yaml');
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});

describe('Grafana dashboard', () => {
  interface Panel {
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: { expr: string; datasource: { uid: string } }[];
  }
  const dashboard = JSON.parse(readFileSync(join(CHART, 'files/dashboards/rtmpd.json'), 'utf8')) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; includeAll?: boolean; allValue?: string }[] };
  };

  it('uses the chosen Prometheus data source everywhere, so an import works on any Grafana', () => {
    expect(dashboard.uid).toBe('flux-rtmpd');
    expect(dashboard.templating.list[0]).toMatchObject({ name: 'datasource', type: 'datasource' });
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      for (const target of panel.targets ?? []) expect(target.datasource.uid, panel.title).toBe('${datasource}');
    }
  });

  it('defaults every variable to All = .*, which also matches series without Kubernetes labels', () => {
    const variables = dashboard.templating.list.filter((v) => v.type === 'query');
    expect(variables.map((v) => v.name)).toEqual(['namespace', 'rtmpserver', 'stream']);
    for (const v of variables) expect(v).toMatchObject({ includeAll: true, allValue: '.*' });
  });

  it('has the panels the issue asks for', () => {
    const titles = dashboard.panels.map((p) => p.title);
    for (const title of [
      'Live streams',
      'Publishers and players',
      'Bitrate in per stream',
      'Bitrate out per stream',
      'Relay latency percentiles',
      'Frames dropped for slow players',
      'Snapshot outcomes',
      'CPU',
      'Memory',
      'Event-loop lag',
    ]) {
      expect(titles).toContain(title);
    }
  });
});
