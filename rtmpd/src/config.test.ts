import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configKeys, configSchema, envName, flagName, helpText, loadConfig, splitHostPort } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'rtmpd-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(text: string, extension = 'yaml'): string {
  const path = join(dir, `config-${files++}.${extension}`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError message loadConfig throws, or a failure when it does not throw one. */
function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error(`accepted ${argv.join(' ')}`);
}

describe('loadConfig', () => {
  it('gives every option its schema default with no flag, env or file', () => {
    const { config, help, version } = loadConfig([], {});
    expect(config).toEqual(configSchema.parse({}));
    expect(config).toMatchObject({ rtmpBind: '0.0.0.0:1935', chunkSize: 60000, recordingEnabled: true, logLevel: 'info' });
    expect(help).toBe(false);
    expect(version).toBe(false);
  });

  it('takes a flag over the environment, and the environment over the config file', () => {
    const file = configFile('chunkSize: 4096\nplayWaitSeconds: 3\nidleTimeoutSeconds: 7\n');
    const env = { RTMPD_CHUNK_SIZE: '8192', RTMPD_PLAY_WAIT_SECONDS: '5' };
    const { config } = loadConfig(['--config', file, '--chunk-size', '16384'], env);
    expect(config.chunkSize).toBe(16384); // flag > env > file
    expect(config.playWaitSeconds).toBe(5); // env > file
    expect(config.idleTimeoutSeconds).toBe(7); // file > default
  });

  it('finds the config file through RTMPD_CONFIG, reads JSON too, and ignores empty variables', () => {
    const file = configFile(JSON.stringify({ storageDir: '/srv/rec', maxConnections: 12 }), 'json');
    const { config } = loadConfig([], { RTMPD_CONFIG: file, RTMPD_MAX_CONNECTIONS: '' });
    expect(config.storageDir).toBe('/srv/rec');
    expect(config.maxConnections).toBe(12);
    expect(loadConfig([], { RTMPD_CONFIG: configFile('') }).config).toEqual(configSchema.parse({}));
  });

  it('takes LOG_LEVEL when nothing named the log level, and RTMPD_LOG_LEVEL, a flag or the file over it', () => {
    expect(loadConfig([], { LOG_LEVEL: 'debug' }).config.logLevel).toBe('debug');
    expect(loadConfig([], { LOG_LEVEL: 'debug', RTMPD_LOG_LEVEL: 'warn' }).config.logLevel).toBe('warn');
    expect(loadConfig(['--log-level', 'error'], { LOG_LEVEL: 'debug' }).config.logLevel).toBe('error');
    expect(loadConfig(['--config', configFile('logLevel: trace\n')], { LOG_LEVEL: 'debug' }).config.logLevel).toBe('trace');
    expect(refusal([], { LOG_LEVEL: 'loud' })).toMatch(/--log-level \(RTMPD_LOG_LEVEL\)/);
  });

  it('reads booleans as a bare switch, as true/false, 1/0 and yes/no from flags and env, and as YAML booleans from the file', () => {
    for (const [text, value] of [
      ['true', true],
      ['1', true],
      ['yes', true],
      ['false', false],
      ['0', false],
      ['no', false],
    ] as const) {
      expect(loadConfig(['--recording-enabled', text], {}).config.recordingEnabled, text).toBe(value);
      expect(loadConfig([], { RTMPD_SNAPSHOT_ENABLED: text }).config.snapshotEnabled, text).toBe(value);
    }
    expect(loadConfig(['--recording-enabled'], { RTMPD_RECORDING_ENABLED: 'false' }).config.recordingEnabled).toBe(true);
    expect(loadConfig(['--config', configFile('recordingEnabled: false\n')], {}).config.recordingEnabled).toBe(false);
    expect(refusal(['--recording-enabled=maybe'])).toMatch(/--recording-enabled \(RTMPD_RECORDING_ENABLED\): .*got "maybe"/);
    expect(refusal([], { RTMPD_SNAPSHOT_ENABLED: 'on' })).toMatch(/--snapshot-enabled \(RTMPD_SNAPSHOT_ENABLED\): .*got "on"/);
  });

  it('names the flag and variable of a bad value, and says what it got', () => {
    expect(refusal(['--chunk-size', '64'])).toMatch(/--chunk-size \(RTMPD_CHUNK_SIZE\): .*got "64"/);
    expect(refusal([], { RTMPD_RTMP_BIND: 'localhost' })).toMatch(/--rtmp-bind \(RTMPD_RTMP_BIND\): expected HOST:PORT.*got "localhost"/);
    expect(refusal(['--http-bind', '0.0.0.0:70000'])).toMatch(/--http-bind \(RTMPD_HTTP_BIND\): port must be 0-65535/);
    expect(refusal(['--config', configFile('gopCacheMaxBytes: -1\n')])).toMatch(/--gop-cache-max-bytes \(RTMPD_GOP_CACHE_MAX_BYTES\)/);
    // Every bad option is named, not just the first.
    const both = refusal(['--chunk-size', 'big', '--snapshot-quality', '99']);
    expect(both).toMatch(/--chunk-size/);
    expect(both).toMatch(/--snapshot-quality/);
  });

  it('reads a number from a flag, a variable or file text in decimal digits only, and names the option of any other spelling', () => {
    const file = (value: string) => ['--config', configFile(`idleTimeoutSeconds: ${JSON.stringify(value)}\n`)];
    for (const text of ['1e2', '0x10', ' 5', '5 ', '5abc', '+5', '-5', '5.0', '']) {
      const wanted =
        /^invalid configuration:\n {2}--idle-timeout-seconds \(RTMPD_IDLE_TIMEOUT_SECONDS\): expected a whole number from 1 to 3600 in decimal digits, got /;
      expect(refusal([`--idle-timeout-seconds=${text}`]), text).toMatch(wanted);
      if (text !== '') expect(refusal([], { RTMPD_IDLE_TIMEOUT_SECONDS: text }), text).toMatch(wanted); // an empty variable is unset
      expect(refusal(file(text)), text).toMatch(wanted);
    }
    for (const text of ['1e-1', '.5', '0x1', '0.5s']) {
      expect(refusal(['--hls-part-seconds', text]), text).toMatch(
        /--hls-part-seconds \(RTMPD_HLS_PART_SECONDS\): expected a number from 0.05 to 5 in decimal digits/,
      );
    }
    expect(loadConfig(['--idle-timeout-seconds', '0045', '--hls-part-seconds', '0.25'], {}).config).toMatchObject({
      idleTimeoutSeconds: 45,
      hlsPartSeconds: 0.25,
    });
    expect(loadConfig([], { RTMPD_IDLE_TIMEOUT_SECONDS: '60' }).config.idleTimeoutSeconds).toBe(60);
    // The file's own numbers are typed (YAML, JSON): taken as the numbers they are.
    expect(loadConfig(['--config', configFile('idleTimeoutSeconds: 40\nhlsPartSeconds: 0.5\n')], {}).config).toMatchObject({
      idleTimeoutSeconds: 40,
      hlsPartSeconds: 0.5,
    });
  });

  it('reads webhook URLs and events as a list from the file or separated by commas from a flag, and refuses what is not http(s)', () => {
    const urls = ['http://127.0.0.1:9000/hook', 'https://hooks.example.com/rtmp?x=1'];
    expect(loadConfig(['--webhook-urls', urls.join(', ')], {}).config.webhookUrls).toEqual(urls);
    expect(loadConfig(['--config', configFile(`webhookUrls: [${urls.join(', ')}]\n`)], {}).config.webhookUrls).toEqual(urls);
    expect(loadConfig([], { RTMPD_WEBHOOK_EVENTS: 'stream.ended' }).config.webhookEvents).toEqual(['stream.ended']);
    expect(refusal(['--webhook-urls', 'ftp://example.com/x'])).toMatch(/--webhook-urls \(RTMPD_WEBHOOK_URLS\): \[0\]: expected an http/);
    expect(refusal(['--webhook-urls', 'http://a.test, not a url'])).toMatch(/--webhook-urls .*\[1\]/);
    expect(refusal(['--webhook-events', 'stream.begun'])).toMatch(/--webhook-events \(RTMPD_WEBHOOK_EVENTS\)/);
    expect(refusal(['--webhook-max-attempts', '0'])).toMatch(/--webhook-max-attempts/);
    // At most 16 URLs: each event is queued and sent once per URL.
    const many = (n: number) => Array.from({ length: n }, (_, i) => `http://127.0.0.1:9000/hook${i}`).join(',');
    expect(loadConfig(['--webhook-urls', many(16)], {}).config.webhookUrls).toHaveLength(16);
    expect(refusal(['--webhook-urls', many(17)])).toMatch(/--webhook-urls .*16/);
  });

  it('reads a transcoding ladder with its defaults and holds it to its bounds', () => {
    const rendition = (more: object) => ({ name: '480p', height: 480, videoBitrate: 1200, ...more });
    const rules = (renditions: object[]) => ['--transcode-rules', JSON.stringify([{ app: 'live', renditions }])];
    expect(loadConfig(rules([rendition({})]), {}).config.transcodeRules).toEqual([
      { app: 'live', key: '*', renditions: [{ name: '480p', height: 480, videoBitrate: 1200, audioBitrate: 128, codec: 'h264' }] },
    ]);
    const nine = Array.from({ length: 9 }, (_, i) => rendition({ name: `r${i}` }));
    expect(refusal(rules(nine))).toMatch(/--transcode-rules .*renditions: Too big: expected array to have <=8 items/);
    expect(refusal(rules([rendition({ name: '480P' })]))).toMatch(/a-z 0-9 _ -/);
    expect(refusal(rules([rendition({ height: 481 })]))).toMatch(/must be even/);
    expect(refusal(rules([rendition({ videoBitrate: 10 })]))).toMatch(/--transcode-rules/);
    expect(refusal(rules([rendition({}), rendition({ height: 360 })]))).toMatch(/rendition names must differ/);
    expect(refusal(rules([rendition({ codec: 'hevc' })]))).toMatch(/--transcode-rules/);
    expect(refusal(rules([]))).toMatch(/--transcode-rules/);
  });

  it('refuses options that defeat each other with one message naming both and their values, and takes them at the bounds', () => {
    const callback = (timeoutMs: number) => [
      '--auth-rules',
      JSON.stringify([
        { method: 'open', actions: ['play'] },
        { method: 'callback', url: 'http://127.0.0.1:9/auth', timeoutMs },
      ]),
    ];
    expect(refusal([...callback(5000), '--idle-timeout-seconds', '5'])).toBe(
      "invalid configuration:\n  --auth-rules [1] (callback) timeoutMs 5000 must be less than --idle-timeout-seconds 5 (5000 ms): a connection whose admission takes that long is closed as idle before the callback's timeout can answer",
    );
    expect(loadConfig([...callback(4999), '--idle-timeout-seconds', '5'], {}).config.idleTimeoutSeconds).toBe(5);
    // The callback's own default (2 s) counts too.
    expect(
      refusal(['--auth-rules', '[{"method":"callback","url":"http://127.0.0.1:9/auth"}]'], { RTMPD_IDLE_TIMEOUT_SECONDS: '2' }),
    ).toMatch(/\[0\] \(callback\) timeoutMs 2000 must be less than --idle-timeout-seconds 2 /);

    const fleet = ['--fleet-name', 'edge', '--config', configFile('fleetLeaseSeconds: 20\n')];
    expect(refusal([...fleet, '--idle-timeout-seconds', '21'])).toMatch(
      /^invalid configuration:\n {2}--fleet-lease-seconds 20 must be at most 19 with --idle-timeout-seconds 21: /,
    );
    expect(loadConfig([...fleet, '--idle-timeout-seconds', '22'], {}).config.fleetLeaseSeconds).toBe(20);
    // Without a fleet the lease is not used, so it contradicts nothing.
    expect(loadConfig(['--fleet-lease-seconds', '20', '--idle-timeout-seconds', '5'], {}).config.fleetLeaseSeconds).toBe(20);

    // Low-Latency HLS has fMP4 parts only: with MPEG-TS at the same level it is refused; a rule's own setting wins over a flag.
    expect(refusal(['--hls-low-latency', 'true', '--hls-variant', 'mpegts'])).toMatch(
      /^invalid configuration:\n {2}--hls-low-latency and --hls-variant mpegts: Low-Latency HLS has fMP4 parts only/,
    );
    expect(refusal(['--hls-rules', '[{"app":"tv","lowLatency":true,"variant":"mpegts"}]'])).toMatch(
      /--hls-rules \[0\] sets lowLatency and variant mpegts: /,
    );
    expect(refusal(['--hls-variant', 'ts'])).toMatch(/hls-variant/);
    const rules = loadConfig(['--hls-low-latency', 'true', '--hls-rules', '[{"app":"tv","variant":"mpegts"}]'], {}).config;
    expect(rules.hlsRules).toMatchObject([{ app: 'tv', variant: 'mpegts' }]);
  });

  it('refuses unknown flags, unknown file keys and unreadable or malformed files', () => {
    expect(refusal(['--chunk-sise', '4096'])).toMatch(/chunk-sise.*see --help/);
    expect(refusal(['--config', configFile('chunkSise: 4096\n')])).toMatch(/unknown option\(s\): chunkSise/);
    expect(refusal(['--config', join(dir, 'missing.yaml')])).toMatch(/cannot read config file .*missing\.yaml/);
    expect(refusal(['--config', configFile('- a\n- b\n')])).toMatch(/must hold a mapping of option: value/);
  });

  it('reads --help and --version', () => {
    expect(loadConfig(['--help'], {}).help).toBe(true);
    expect(loadConfig(['-h'], {}).help).toBe(true);
    expect(loadConfig(['--version'], {}).version).toBe(true);
  });
});

describe('names and help', () => {
  it('derives flag and variable names from the schema keys', () => {
    expect(flagName('playerStallTimeoutSeconds')).toBe('player-stall-timeout-seconds');
    expect(envName('playerStallTimeoutSeconds')).toBe('RTMPD_PLAYER_STALL_TIMEOUT_SECONDS');
  });

  it('lists every option in --help with its variable and default', () => {
    const help = helpText();
    for (const key of configKeys) {
      expect(help).toMatch(new RegExp(`^  --${flagName(key)}( <value>)?$`, 'm'));
      expect(help).toContain(`env ${envName(key)})`);
    }
    expect(help).toContain('(default "0.0.0.0:1935"; env RTMPD_RTMP_BIND)');
  });

  it('splits HOST:PORT for listen, IPv6 in brackets', () => {
    expect(splitHostPort('127.0.0.1:1935')).toEqual({ host: '127.0.0.1', port: 1935 });
    expect(splitHostPort('[::1]:8082')).toEqual({ host: '::1', port: 8082 });
  });
});

describe('listen addresses', () => {
  it('take every port up to 65535 and refuse 65536', () => {
    expect(loadConfig(['--rtmp-bind', '0.0.0.0:65535', '--http-bind', '[::1]:0'], {}).config).toMatchObject({
      rtmpBind: '0.0.0.0:65535',
      httpBind: '[::1]:0',
    });
    expect(refusal(['--rtmp-bind', '0.0.0.0:65536'])).toMatch(/--rtmp-bind \(RTMPD_RTMP_BIND\): port must be 0-65535/);
  });
});
