import { describe, expect, it } from 'vitest';
import { helpText, parseFlags, splitBind } from './flags.ts';

describe('operator flags', () => {
  it('has controller-runtime-like defaults', () => {
    expect(parseFlags([], {})).toMatchObject({
      namespaces: [],
      metricsBind: ':8080',
      healthBind: ':8081',
      leaderElect: false,
      leaderElectionId: 'rtmpd-operator.media.fluxiot.io',
      logLevel: 'info',
      workers: 2,
    });
  });

  it('reads flags and env', () => {
    expect(
      parseFlags(['--namespaces=a, b', '--leader-elect', '--leader-election-namespace=ops', '--metrics-bind=127.0.0.1:0'], {}),
    ).toMatchObject({ namespaces: ['a', 'b'], leaderElect: true, leaderElectionNamespace: 'ops', metricsBind: '127.0.0.1:0' });
    expect(parseFlags([], { WATCH_NAMESPACES: 'x', LEADER_ELECT: 'true' })).toMatchObject({ namespaces: ['x'], leaderElect: true });
    expect(() => parseFlags(['--nope'], {})).toThrow();
  });

  it('documents every flag in --help', () => {
    for (const f of ['--namespaces', '--metrics-bind', '--health-bind', '--leader-elect', '--leader-election-namespace', '--log-level'])
      expect(helpText()).toContain(f);
  });

  it('splits binds', () => {
    expect(splitBind(':8080')).toEqual({ host: undefined, port: 8080 });
    expect(splitBind('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => splitBind('8080')).toThrow();
  });
});
