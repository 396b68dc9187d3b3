import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { watchConfigFile, type ConfigReload } from './config-reload.ts';

const dirs: string[] = [];
const watches: ConfigReload[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(text: string, argv: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'rtmpd-reload-'));
  dirs.push(dir);
  const file = join(dir, 'rtmpd.yaml');
  writeFileSync(file, text);
  const args = ['--config', file, ...argv];
  const { config } = loadConfig(args, {});
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: config.logLevel }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const applied: string[][] = [];
  const watch = watchConfigFile({ file, argv: args, env: {}, config, logger, pollIntervalMs: 20, onApplied: (k) => applied.push(k) });
  watches.push(watch);
  return { dir, file, config, logger, lines, applied, watch };
}

describe('config file reload', () => {
  it('applies live options in place and tells the caller which', () => {
    const s = setup('logLevel: info\nsnapshotQuality: 3\n');
    writeFileSync(s.file, 'logLevel: debug\nsnapshotQuality: 9\n');
    expect(s.watch.reload()).toEqual({ applied: ['logLevel', 'snapshotQuality'], needRestart: [] });
    expect(s.config.logLevel).toBe('debug');
    expect(s.config.snapshotQuality).toBe(9);
    expect(s.logger.isLevelEnabled('debug')).toBe(true);
    expect(s.logger.child({ component: 'rtmp' }).isLevelEnabled('debug')).toBe(true);
    expect(s.applied).toEqual([['logLevel', 'snapshotQuality']]);
    expect(s.lines.at(-1)).toMatchObject({ msg: 'config reloaded', applied: { logLevel: 'debug', snapshotQuality: 9 } });
  });

  it('logs new forward rules without the stream keys of their URLs', () => {
    const s = setup('forwardRules: []\n');
    writeFileSync(s.file, 'forwardRules:\n  - app: live\n    urls: [rtmp://a.rtmp.youtube.com/live2/s3cret-key]\n');
    expect(s.watch.reload()).toEqual({ applied: ['forwardRules'], needRestart: [] });
    expect(s.config.forwardRules[0]!.urls).toEqual(['rtmp://a.rtmp.youtube.com/live2/s3cret-key']);
    expect(s.lines.at(-1)).toMatchObject({
      msg: 'config reloaded',
      applied: { forwardRules: [{ app: 'live', urls: ['rtmp://a.rtmp.youtube.com/live2/***'] }] },
    });
    expect(JSON.stringify(s.lines)).not.toContain('s3cret');
  });

  it('logs webhook, callback and JWKS URLs without their credentials or query', () => {
    const s = setup('webhookUrls: []\n');
    writeFileSync(
      s.file,
      [
        'webhookUrls: ["https://hook-user:hook-pass@hooks.example.com/rtmpd?token=hook-token"]',
        'authRules:',
        '  - { method: callback, url: "https://cb-user:cb-pass@auth.example.com/decide?key=cb-token" }',
        '  - { method: jwt, jwksUrl: "https://idp.example.com/jwks?access=jwks-token" }',
        '',
      ].join('\n'),
    );
    expect(s.watch.reload()).toEqual({ applied: ['authRules', 'webhookUrls'], needRestart: [] });
    expect(s.lines.at(-1)).toMatchObject({
      msg: 'config reloaded',
      applied: {
        webhookUrls: ['https://hooks.example.com/rtmpd'],
        authRules: [{ url: 'https://auth.example.com/decide' }, { jwksUrl: 'https://idp.example.com/jwks' }],
      },
    });
    expect(s.config.webhookUrls).toEqual(['https://hook-user:hook-pass@hooks.example.com/rtmpd?token=hook-token']);
    expect(JSON.stringify(s.lines)).not.toMatch(/hook-pass|hook-token|cb-pass|cb-token|jwks-token/);
  });

  it('keeps options that need a restart at their running values, and says so', () => {
    const s = setup('rtmpBind: 127.0.0.1:1935\n');
    writeFileSync(s.file, 'rtmpBind: 127.0.0.1:1936\nmaxConnections: 5\n');
    expect(s.watch.reload()).toEqual({ applied: ['maxConnections'], needRestart: ['rtmpBind'] });
    expect(s.config.rtmpBind).toBe('127.0.0.1:1935');
    expect(s.config.maxConnections).toBe(5);
    expect(s.lines.at(-1)).toMatchObject({ level: 40, msg: 'config change takes effect after a restart', options: ['rtmpBind'] });
  });

  it('keeps the running configuration when the new file is invalid', () => {
    const s = setup('snapshotQuality: 3\n');
    writeFileSync(s.file, 'snapshotQuality: 99\n');
    expect(s.watch.reload()).toEqual({ applied: [], needRestart: [] });
    expect(s.config.snapshotQuality).toBe(3);
    expect(s.lines.at(-1)).toMatchObject({ level: 50, err: expect.stringContaining('--snapshot-quality') as unknown });
  });

  it('keeps the running configuration when the new file holds options that contradict each other', () => {
    const s = setup('idleTimeoutSeconds: 30\n', ['--fleet-name', 'edge', '--fleet-lease-seconds', '20']);
    writeFileSync(s.file, 'idleTimeoutSeconds: 10\n');
    expect(s.watch.reload()).toEqual({ applied: [], needRestart: [] });
    expect(s.config.idleTimeoutSeconds).toBe(30);
    expect(s.lines.at(-1)).toMatchObject({
      level: 50,
      msg: 'config file not applied; the running configuration stays',
      err: expect.stringContaining('--fleet-lease-seconds 20 must be at most 8 with --idle-timeout-seconds 10') as unknown,
    });
  });

  it.each(['apiReadAccess', 'metricsAccess'])(
    'keeps the running access when the new file turns %s to token with no --api-token-file',
    (key) => {
      const s = setup(`${key}: open\n`);
      writeFileSync(s.file, `${key}: token\n`);
      expect(s.watch.reload()).toEqual({ applied: [], needRestart: [] });
      expect(s.config.apiReadAccess).toBe('open');
      expect(s.config.metricsAccess).toBe('open');
      expect(s.lines.at(-1)).toMatchObject({
        level: 50,
        msg: 'config file not applied; the running configuration stays',
        err: expect.stringContaining('--api-read-access token and --metrics-access token need --api-token-file') as unknown,
      });
    },
  );

  it('lets flags keep winning over the file', () => {
    const s = setup('logLevel: info\n', ['--log-level=warn']);
    writeFileSync(s.file, 'logLevel: debug\n');
    expect(s.watch.reload().applied).toEqual([]);
    expect(s.config.logLevel).toBe('warn');
  });

  it("notices an edit in place of the same size that keeps the modification time (rsync -t, cp -p, or two writes within the file system's timestamp tick)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-reload-'));
    dirs.push(dir);
    const file = join(dir, 'rtmpd.yaml');
    const KEPT_MTIME = 1_700_000_000;
    writeFileSync(file, 'logLevel: info\n');
    utimesSync(file, KEPT_MTIME, KEPT_MTIME);
    const args = ['--config', file];
    const { config } = loadConfig(args, {});
    const logger = pino({ level: config.logLevel }, { write: () => undefined });
    watches.push(watchConfigFile({ file, argv: args, env: {}, config, logger, pollIntervalMs: 20 }));
    // the same inode, size and mtime: only the text tells
    writeFileSync(file, 'logLevel: warn\n');
    utimesSync(file, KEPT_MTIME, KEPT_MTIME);
    const deadline = Date.now() + 5000;
    while (config.logLevel !== 'warn' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(config.logLevel).toBe('warn');
  });

  it('notices a ConfigMap update (the kubelet swaps a ..data symlink to a new directory) by itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-reload-'));
    dirs.push(dir);
    // The kubelet's layout: rtmpd.yaml → ..data/rtmpd.yaml, ..data → ..<version>/
    const publish = (version: string, text: string) => {
      mkdirSync(join(dir, `..${version}`));
      writeFileSync(join(dir, `..${version}`, 'rtmpd.yaml'), text);
      symlinkSync(`..${version}`, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    publish('v1', 'logLevel: info\n');
    const file = join(dir, 'rtmpd.yaml');
    symlinkSync('..data/rtmpd.yaml', file);
    const args = ['--config', file];
    const { config } = loadConfig(args, {});
    const logger = pino({ level: config.logLevel }, { write: () => undefined });
    watches.push(watchConfigFile({ file, argv: args, env: {}, config, logger, pollIntervalMs: 20 }));
    publish('v2', 'logLevel: trace\n');
    rmSync(join(dir, '..v1'), { recursive: true });
    const deadline = Date.now() + 5000;
    while (config.logLevel !== 'trace' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(config.logLevel).toBe('trace');
    expect(logger.level).toBe('trace');
  });

  it('applies an edit made between the start and the watch, at once, not at the next change', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtmpd-reload-'));
    dirs.push(dir);
    const file = join(dir, 'rtmpd.yaml');
    writeFileSync(file, 'logLevel: info\n');
    const args = ['--config', file];
    const { config } = loadConfig(args, {});
    writeFileSync(file, 'logLevel: trace\n');
    const logger = pino({ level: config.logLevel }, { write: () => undefined });
    // A poll that never comes during the test: only the watch's first read can see the edit.
    watches.push(watchConfigFile({ file, argv: args, env: {}, config, logger, pollIntervalMs: 3_600_000 }));
    expect(config.logLevel).toBe('trace');
  });
});

describe('config file polling', () => {
  it('keeps watching after a change: each later edit is applied by itself too', async () => {
    const s = setup('logLevel: info\n');
    for (const level of ['debug', 'warn', 'error'] as const) {
      writeFileSync(s.file, `logLevel: ${level}\n`);
      const deadline = Date.now() + 5000;
      while (s.config.logLevel !== level && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(s.config.logLevel).toBe(level);
    }
  });
});
