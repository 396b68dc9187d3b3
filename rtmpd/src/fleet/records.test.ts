import { describe, expect, it } from 'vitest';
import { claimLease, claimName, claimRecord, podLease, podLeaseName, podOf, podRecord } from './records.ts';

describe('fleet Lease records', () => {
  it('names a claim after its stream so that any key makes a valid object name, and different keys different names', () => {
    const name = claimName('edge', 'rtmp/live/Cam_1.a');
    expect(name).toMatch(/^rtmpd-stream\.edge\.[0-9a-f]{24}$/);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(claimName('edge', 'rtmp/live/Cam_1.a')).toBe(name);
    expect(claimName('edge', 'rtmp/live/cam_1.a')).not.toBe(name);
    expect(claimName('other', 'rtmp/live/Cam_1.a')).not.toBe(name);
  });

  it('tells the pod from a holder identity (pod names may hold underscores only before the id)', () => {
    expect(podOf('edge-0_1a2b3c4d')).toBe('edge-0');
    expect(podLeaseName('edge-0')).toBe('rtmpd-pod.edge-0');
  });

  it('reads back what it writes', () => {
    const now = '2026-11-28T10:00:00.123456Z';
    const pod = podLease({
      fleet: 'edge',
      pod: 'edge-1',
      identity: 'edge-1_abcd',
      httpAddress: '10.0.0.7:8082',
      durationSeconds: 10,
      publishers: 3,
      players: 42,
      draining: true,
      now,
      acquireTime: now,
    });
    expect(podRecord(pod)).toMatchObject({
      lease: 'rtmpd-pod.edge-1',
      pod: 'edge-1',
      identity: 'edge-1_abcd',
      httpAddress: '10.0.0.7:8082',
      publishers: 3,
      players: 42,
      draining: true,
      durationMs: 10_000,
      renewTime: now,
      ownedByPod: false,
    });
    expect(claimRecord(pod)).toBeUndefined();
    const fields = { fleet: 'edge', streamId: 'rtmp/live/a', identity: 'edge-1_abcd', durationSeconds: 10, now };
    const claim = claimLease({ ...fields, protocol: 'rtmps' }, '42');
    expect(claim.metadata.resourceVersion).toBe('42');
    expect(claimRecord({ ...claim, metadata: { ...claim.metadata, resourceVersion: '43' } })).toEqual({
      lease: claimName('edge', 'rtmp/live/a'),
      resourceVersion: '43',
      streamId: 'rtmp/live/a',
      identity: 'edge-1_abcd',
      acquireTime: now,
      protocol: 'rtmps',
      ownedByPod: false,
    });
    expect(claimRecord(claimLease({ ...fields, protocol: 'rtmp' }))?.protocol).toBe('rtmp');
    expect(podRecord(claim)).toBeUndefined();
  });

  it('makes the Pod the owner of its Lease when the pod knows its UID, so the garbage collector deletes it with the Pod', () => {
    const fields = {
      fleet: 'edge',
      pod: 'edge-1',
      identity: 'edge-1_abcd',
      httpAddress: '10.0.0.7:8082',
      durationSeconds: 10,
      publishers: 0,
      players: 0,
      draining: false,
      now: '2026-11-28T10:00:00.000000Z',
      acquireTime: '2026-11-28T10:00:00.000000Z',
    };
    const uid = '4b3d5a7e-1f0c-4e8a-9d1b-6c2f0e9a7b31';
    expect(podLease({ ...fields, podUid: uid }).metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'edge-1', uid }]);
    expect(podRecord(podLease({ ...fields, podUid: uid }))?.ownedByPod).toBe(true);
    expect(podLease({ ...fields, podUid: '' }).metadata.ownerReferences).toBeUndefined();
    expect(podLease(fields).metadata.ownerReferences).toBeUndefined();
  });

  it('makes the Pod the owner of its stream claims too, so a killed pod’s claims go with it', () => {
    const claim = {
      fleet: 'edge',
      streamId: 'rtmp/live/a',
      protocol: 'rtmp' as const,
      identity: 'edge-1_abcd',
      durationSeconds: 10,
      now: '2026-11-28T10:00:00.000000Z',
    };
    const uid = '4b3d5a7e-1f0c-4e8a-9d1b-6c2f0e9a7b31';
    expect(claimLease({ ...claim, podUid: uid }).metadata.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Pod', name: 'edge-1', uid },
    ]);
    expect(claimRecord(claimLease({ ...claim, podUid: uid }))?.ownedByPod).toBe(true);
    expect(claimLease({ ...claim, podUid: '' }).metadata.ownerReferences).toBeUndefined();
    expect(claimLease(claim).metadata.ownerReferences).toBeUndefined();
  });

  it('reads a claim written before the protocol was recorded (a rolling upgrade has both) as rtmp, as it was shown then', () => {
    const claim = claimLease({
      fleet: 'edge',
      streamId: 'rtmp/live/a',
      protocol: 'rtmps',
      identity: 'edge-1_abcd',
      durationSeconds: 10,
      now: '',
    });
    const { 'media.fluxiot.io/protocol': written, ...older } = claim.metadata.annotations ?? {};
    expect(written).toBe('rtmps');
    expect(claimRecord({ ...claim, metadata: { ...claim.metadata, annotations: older } })).toMatchObject({
      streamId: 'rtmp/live/a',
      identity: 'edge-1_abcd',
      protocol: 'rtmp',
    });
    const later = { ...claim.metadata.annotations, 'media.fluxiot.io/protocol': 'srt' };
    expect(claimRecord({ ...claim, metadata: { ...claim.metadata, annotations: later } })?.protocol).toBe('rtmp');
  });

  it('ignores Leases that are not the fleet’s and load figures that are not counts', () => {
    expect(claimRecord({ metadata: { name: 'x', labels: { 'media.fluxiot.io/lease': 'stream' } }, spec: {} })).toBeUndefined();
    const record = podRecord({
      metadata: {
        name: 'rtmpd-pod.p',
        labels: { 'media.fluxiot.io/lease': 'pod' },
        annotations: { 'media.fluxiot.io/publishers': '-1', 'media.fluxiot.io/players': 'many' },
      },
      spec: { holderIdentity: 'p_1' },
    });
    expect(record).toMatchObject({ pod: 'p', publishers: 0, players: 0, draining: false, durationMs: 0 });
  });
});
