import { describe, expect, it } from 'vitest';
import { ConfigError, flagsSchema, helpText, parseFlags, splitBind, type Flags } from './flags.ts';
import { defaultImage, defaultTranscodeImage } from './version.ts';

describe('operator flags', () => {
  it('has controller-runtime-like defaults, written once in the schema', () => {
    expect(parseFlags([], {}).flags).toEqual({
      namespaces: [],
      metricsBind: ':8080',
      healthBind: ':8081',
      metricsAuth: 'none',
      metricsCertDir: '',
      leaderElect: false,
      leaderElectionId: 'rtmpd-operator.media.fluxiot.io',
      logLevel: 'info',
      workers: 2,
      requeueSeconds: 30,
      rtmpdImage: defaultImage,
      rtmpdTranscodeImage: defaultTranscodeImage,
    });
    expect(defaultTranscodeImage).toBe(`${defaultImage}-transcode`);
  });

  it('takes a flag over its environment variable over the default, for every option', () => {
    const cases: [keyof Flags, string, string, unknown, string, unknown][] = [
      // key, variable, flag value, from the flag, variable value, from the variable
      ['namespaces', 'WATCH_NAMESPACES', 'x, y', ['x', 'y'], 'a', ['a']],
      ['metricsBind', 'METRICS_BIND', '127.0.0.1:9', '127.0.0.1:9', ':7', ':7'],
      ['healthBind', 'HEALTH_BIND', '127.0.0.1:9', '127.0.0.1:9', ':7', ':7'],
      ['metricsAuth', 'METRICS_AUTH', 'kubernetes', 'kubernetes', 'none', 'none'],
      ['metricsCertDir', 'METRICS_CERT_DIR', '/tls', '/tls', '/env-tls', '/env-tls'],
      ['leaderElect', 'LEADER_ELECT', 'false', false, 'true', true],
      ['leaderElectionNamespace', 'LEADER_ELECTION_NAMESPACE', 'ops', 'ops', 'env-ns', 'env-ns'],
      ['leaderElectionId', 'LEADER_ELECTION_ID', 'flag-id', 'flag-id', 'env-id', 'env-id'],
      ['logLevel', 'LOG_LEVEL', 'debug', 'debug', 'warn', 'warn'],
      ['workers', 'WORKERS', '5', 5, '3', 3],
      ['requeueSeconds', 'REQUEUE_SECONDS', '600', 600, '5', 5],
      ['rtmpdImage', 'RTMPD_IMAGE', 'a/rtmpd:1', 'a/rtmpd:1', 'b/rtmpd:2', 'b/rtmpd:2'],
      ['rtmpdTranscodeImage', 'RTMPD_TRANSCODE_IMAGE', 'a/rtmpd:1-t', 'a/rtmpd:1-t', 'b/rtmpd:2-t', 'b/rtmpd:2-t'],
    ];
    expect(cases.map(([key]) => key).sort()).toEqual(
      Object.keys(flagsSchema.shape)
        .filter((k) => k !== 'kubeconfig')
        .sort(),
    );
    for (const [key, variable, flagValue, fromFlag, envValue, fromEnv] of cases) {
      const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${flagValue}`;
      expect(parseFlags([flag], { [variable]: envValue }).flags[key], `${flag} over ${variable}`).toEqual(fromFlag);
      expect(parseFlags([], { [variable]: envValue }).flags[key], `${variable} over the default`).toEqual(fromEnv);
    }
    expect(parseFlags(['--kubeconfig=/k'], { KUBECONFIG: '/a:/b' }).flags.kubeconfig).toBe('/k');
    expect(parseFlags([], { KUBECONFIG: '/a:/b' }).flags.kubeconfig).toBeUndefined();
  });

  it('reads a bare --leader-elect as true and LEADER_ELECT as a boolean', () => {
    expect(parseFlags(['--leader-elect'], {}).flags.leaderElect).toBe(true);
    expect(parseFlags(['--leader-elect', 'false'], { LEADER_ELECT: 'true' }).flags.leaderElect).toBe(false);
    expect(parseFlags([], { LEADER_ELECT: 'true' }).flags.leaderElect).toBe(true);
  });

  it('refuses a bad value naming the option, and an unknown flag', () => {
    expect(() => parseFlags(['--log-level=verbose'], {})).toThrow(ConfigError);
    expect(() => parseFlags(['--log-level=verbose'], {})).toThrow(/--log-level \(LOG_LEVEL\): .*got "verbose"/);
    expect(() => parseFlags([], { LOG_LEVEL: 'loud' })).toThrow(/--log-level \(LOG_LEVEL\)/);
    expect(() => parseFlags(['--workers=0'], {})).toThrow(/--workers \(WORKERS\)/);
    for (const notDecimal of ['0x10', '1e1', '+5', ' 5', ''])
      expect(() => parseFlags([`--workers=${notDecimal}`], {}), notDecimal).toThrow(
        /--workers \(WORKERS\): expected a whole number from 1 to 64 in decimal digits/,
      );
    expect(() => parseFlags(['--metrics-bind=8080'], {})).toThrow(/--metrics-bind \(METRICS_BIND\): expected HOST:PORT/);
    expect(() => parseFlags(['--nope'], {})).toThrow(/--nope/);
  });

  it('documents every option in --help with its default and variable', () => {
    const help = helpText();
    expect(help).toContain('--log-level <value>\n      log level (default "info"; env LOG_LEVEL)');
    expect(help).toContain('--leader-elect\n');
    expect(help).toContain('--kubeconfig <value>');
    expect(help).not.toContain('env KUBECONFIG');
  });

  it('splits binds', () => {
    expect(splitBind(':8080')).toEqual({ host: undefined, port: 8080 });
    expect(splitBind('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('takes port 65535 in a bind and refuses 65536', () => {
    expect(parseFlags(['--metrics-bind=:65535'], {}).flags.metricsBind).toBe(':65535');
    expect(() => parseFlags(['--metrics-bind=:65536'], {})).toThrow(/--metrics-bind \(METRICS_BIND\): port must be 0-65535/);
  });

  it('splits an IPv6 bind to the address without its brackets', () => {
    expect(splitBind('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
  });
});
