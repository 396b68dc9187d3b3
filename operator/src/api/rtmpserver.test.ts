import { configDefault, configKeys, configSchema } from '@flux-rtmpd/rtmpd/config';
import { describe, expect, it } from 'vitest';
import {
  authOptions,
  operatorOwnedOptions,
  parseSpec,
  passthroughOptions,
  rtmpdOption,
  specSchema,
  typedOptions,
  webhookOptions,
  proxyProtocolOptions,
  forwardOptions,
  tlsOptions,
} from './rtmpserver.ts';

describe('RtmpServer spec schema', () => {
  it('fills every default from an empty spec', () => {
    const spec = parseSpec({});
    // Not stored: the operator applies its own default, so its upgrades reach the server.
    expect(spec.image).toBeUndefined();
    expect(spec.replicas).toBe(1);
    expect(spec.ports).toEqual({ rtmp: 1935, http: 8082, health: 8081 });
    expect(spec.service.type).toBe('ClusterIP');
    expect(spec.storage.reclaimPolicy).toBe('Retain');
    expect(spec.storage.recordings).toEqual({ size: '10Gi', accessModes: ['ReadWriteOnce'] });
    expect(spec.storage.keyframes).toEqual({ size: '1Gi', accessModes: ['ReadWriteOnce'] });
    expect(spec.metrics.serviceMonitor).toEqual({ enabled: false, interval: '30s' });
    expect(spec.otel).toEqual({ serviceName: 'rtmpd' });
    expect(spec.rtmpd).toEqual({});
  });

  it("takes typed rtmpd options' defaults from rtmpd's schema", () => {
    const spec = parseSpec({});
    expect(spec.logLevel).toBe(configDefault('logLevel'));
    expect(spec.recording.enabled).toBe(configDefault('recordingEnabled'));
    expect(spec.snapshot).toEqual({
      enabled: configDefault('snapshotEnabled'),
      intervalSeconds: configDefault('snapshotIntervalSeconds'),
      width: configDefault('snapshotWidth'),
      quality: configDefault('snapshotQuality'),
      keep: configDefault('snapshotKeep'),
    });
  });

  it('accounts for every rtmpd option exactly once: operator-owned, typed, or spec.rtmpd', () => {
    const all = [
      ...operatorOwnedOptions,
      ...authOptions,
      ...webhookOptions,
      ...forwardOptions,
      ...tlsOptions,
      ...proxyProtocolOptions,
      ...Object.keys(typedOptions),
      ...passthroughOptions,
    ].sort();
    expect(all).toEqual([...configKeys].sort());
    const passthrough = Object.keys((specSchema.shape.rtmpd.def.innerType as unknown as { shape: object }).shape).sort();
    expect(passthrough).toEqual([...passthroughOptions].sort());
  });

  it("keeps rtmpd's ranges for each option", () => {
    // Authorization's rules and token file have no CRD form of their own: the operator renders them from spec.auth.
    // Rule lists have typed fields of their own (spec.recording.rules, spec.hls.rules) or none yet (forwardRules, transcodeRules); the TLS ports come from spec.tls, the health port from spec.ports.
    const ownForm = [
      ...['authRules', 'apiTokenFile', 'recordingRules', 'hlsRules', 'forwardRules', 'transcodeRules'],
      ...['rtmpsBind', 'httpsBind', 'healthBind'],
    ];
    for (const key of configKeys.filter((k) => !ownForm.includes(k))) {
      const typed = rtmpdOption(key);
      const def = configDefault(key);
      expect(typed.safeParse(def).success, key).toBe(true);
    }
    expect(rtmpdOption('snapshotQuality').safeParse(32).success).toBe(false);
    expect(rtmpdOption('chunkSize').safeParse(127).success).toBe(false);
    expect(rtmpdOption('recordingEnabled').safeParse('yes').success).toBe(false); // typed, not string-coerced
    expect(configSchema.shape.recordingEnabled.parse('yes')).toBe(true); // while rtmpd's flags accept it
  });

  it('refuses what rtmpd would refuse and unknown rtmpd options are dropped, never passed on', () => {
    expect(() => parseSpec({ snapshot: { quality: 0 } })).toThrow();
    expect(() => parseSpec({ logLevel: 'verbose' })).toThrow();
    expect(() => parseSpec({ rtmpd: { chunkSize: 64 } })).toThrow();
    expect(parseSpec({ rtmpd: { chunkSize: 8192, rtmpBind: '0.0.0.0:1' } }).rtmpd).toEqual({ chunkSize: 8192 });
  });

  it('accepts Kubernetes quantities as int or string for resources', () => {
    const spec = parseSpec({ resources: { limits: { cpu: 2, memory: '1Gi' }, requests: { cpu: '500m' } } });
    expect(spec.resources?.limits).toEqual({ cpu: 2, memory: '1Gi' });
    expect(() => parseSpec({ resources: { limits: { memory: 'lots' } } })).toThrow();
  });
});
