import { certificateWarningMs } from '@flux-rtmpd/rtmpd/tls-expiry';
import { describe, expect, it } from 'vitest';
import {
  certificateCause,
  claimCauses,
  crashLoopWindowMs,
  creationCauses,
  eventSelectors,
  maxTerminationMessage,
  missingClaimCauses,
  missingSecretsCause,
  podCauses,
  recentMs,
  type EventView,
} from './causes.ts';

const now = new Date('2026-11-28T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

describe('why pods do not come up', () => {
  it('keeps the scheduler message of an unschedulable pod, and names stuck containers', () => {
    expect(
      podCauses(
        [
          {
            metadata: { name: 'edge-0' },
            status: {
              conditions: [
                { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/2 nodes are available: 2 Insufficient cpu.' },
              ],
            },
          },
          {
            metadata: { name: 'edge-1' },
            status: {
              containerStatuses: [
                { name: 'rtmpd', state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } } },
              ],
            },
          },
          // starting normally: no cause
          {
            metadata: { name: 'edge-2' },
            status: { containerStatuses: [{ name: 'rtmpd', state: { waiting: { reason: 'ContainerCreating' } } }] },
          },
          {
            metadata: { name: 'edge-3', deletionTimestamp: 'x' },
            status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] },
          },
        ],
        now,
      ),
    ).toEqual([
      { reason: 'PodUnschedulable', message: 'pod edge-0 cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu.' },
      { reason: 'ImagePullBackOff', message: 'pod edge-1, container rtmpd: ImagePullBackOff: Back-off pulling image "x"' },
    ]);
  });

  describe('a crash loop', () => {
    const fatal = 'rtmpd: --webhook-secret-file: cannot read /var/run/secrets/rtmpd/hooks/key: ENOENT';
    const crashed = (state: object, finishedAgo: number, more: object = {}) => ({
      metadata: { name: 'edge-0' },
      status: {
        containerStatuses: [
          {
            name: 'rtmpd',
            ready: false,
            restartCount: 3,
            state,
            lastState: { terminated: { exitCode: 2, reason: 'Error', message: `${fatal}\n`, finishedAt: ago(finishedAgo) } },
            ...more,
          },
        ],
      },
    });
    const cause = {
      reason: 'CrashLoopBackOff',
      message: `pod edge-0, container rtmpd: CrashLoopBackOff: restarted 3 times, last exit code 2 (Error): ${fatal}`,
    };

    it("quotes the container's last termination message (rtmpd's fatal error)", () => {
      const backOff = { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=rtmpd' } };
      expect(podCauses([crashed(backOff, 20_000)], now)).toEqual([cause]);
    });

    it('stays a cause between two back-offs: running again, not ready, after a recent failure', () => {
      const running = { running: { startedAt: ago(1000) } };
      expect(podCauses([crashed(running, 2000)], now)).toEqual([cause]);
      // at the kubelet's longest back-off (5 minutes), the last failure is that old when the container starts again
      expect(podCauses([crashed(running, 5 * 60_000 + 10_000)], now)).toEqual([cause]);
      // not once it is ready, nor after a failure the kubelet has forgotten, nor after a clean exit
      expect(podCauses([crashed(running, 2000, { ready: true })], now)).toEqual([]);
      expect(podCauses([crashed(running, crashLoopWindowMs + 1000)], now)).toEqual([]);
      const clean = { lastState: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: ago(2000) } } };
      expect(podCauses([crashed(running, 2000, clean)], now)).toEqual([]);
    });

    it('keeps the end of a long termination message, on one line', () => {
      const logs = `${'x'.repeat(3000)}\nrtmpd: invalid configuration:\n  unknown option(s): auth\n`;
      const [c] = podCauses(
        [
          crashed({ waiting: { reason: 'CrashLoopBackOff' } }, 1000, {
            lastState: { terminated: { exitCode: 2, message: logs, finishedAt: ago(1000) } },
          }),
        ],
        now,
      );
      expect(c!.message).toMatch(/last exit code 2: …x+ \| rtmpd: invalid configuration: \| unknown option\(s\): auth$/);
      expect(c!.message.length).toBeLessThan(maxTerminationMessage + 120);
    });
  });

  it("reads a Pending claim's newest recent Warning", () => {
    const claim = { metadata: { name: 'recordings-edge-0' }, status: { phase: 'Pending' } };
    const event = (reason: string, at: string) => ({
      type: 'Warning',
      reason,
      message: `${reason} happened`,
      involvedObject: { kind: 'PersistentVolumeClaim', name: 'recordings-edge-0' },
      lastTimestamp: at,
    });
    expect(claimCauses([claim], [event('FailedBinding', ago(60_000)), event('ProvisioningFailed', ago(1000))], now)).toEqual([
      { reason: 'ClaimPending', message: 'claim recordings-edge-0 is Pending: ProvisioningFailed: ProvisioningFailed happened' },
    ]);
    // no StorageClass and no default one: the PV controller says so in a Normal Event; waiting for a provisioner is no cause
    const normal = (reason: string, message: string) => ({ ...event(reason, ago(1000)), type: 'Normal', message });
    expect(
      claimCauses([claim], [normal('FailedBinding', 'no persistent volumes available for this claim and no storage class is set')], now),
    ).toEqual([
      {
        reason: 'ClaimPending',
        message:
          'claim recordings-edge-0 is Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set',
      },
    ]);
    expect(claimCauses([claim], [normal('ExternalProvisioning', 'Waiting for a volume to be created')], now)).toEqual([]);
    // an old Warning is a past problem; a bound claim has none
    expect(claimCauses([claim], [event('ProvisioningFailed', ago(recentMs + 1000))], now)).toEqual([]);
    expect(claimCauses([{ ...claim, status: { phase: 'Bound' } }], [event('ProvisioningFailed', ago(1000))], now)).toEqual([]);
  });

  it("reads the StatefulSet's FailedCreate: a pod the admission chain refused", () => {
    const refused = {
      type: 'Warning',
      reason: 'FailedCreate',
      message: 'create Pod edge-0 in StatefulSet edge failed error: pods "edge-0" is forbidden: violates PodSecurity "restricted:latest"',
      involvedObject: { kind: 'StatefulSet', name: 'edge' },
      lastTimestamp: ago(2000),
    };
    expect(creationCauses('edge', [refused], now)).toEqual([
      { reason: 'PodCreationFailed', message: `the StatefulSet cannot create pods: ${refused.message}` },
    ]);
    expect(creationCauses('other', [refused], now)).toEqual([]);
  });

  it('watches exactly the Events it reads, each by one field selector', () => {
    // The API server's field selectors: terms of `=` or `!=`, all of which must hold.
    const selects = (selector: string, e: EventView) =>
      selector.split(',').every((term) => {
        const [, path = '', not, value] = /^([\w.]+)(!?)=(.*)$/.exec(term) ?? [];
        const field = path.split('.').reduce<unknown>((o, key) => (o as Record<string, unknown> | undefined)?.[key], e);
        return (field === value) !== (not === '!');
      });
    const pending = { metadata: { name: 'recordings-edge-0' }, status: { phase: 'Pending' } };
    const reads = (e: EventView) => creationCauses('edge', [e], now).length + claimCauses([pending], [e], now).length > 0;
    const about = (kind: string, type: string, reason: string): EventView => ({
      type,
      reason,
      message: reason,
      involvedObject: { kind, name: kind === 'StatefulSet' ? 'edge' : kind === 'Pod' ? 'edge-0' : 'recordings-edge-0' },
      lastTimestamp: ago(1000),
    });
    const events = [
      about('StatefulSet', 'Warning', 'FailedCreate'),
      about('StatefulSet', 'Warning', 'FailedDelete'),
      about('StatefulSet', 'Normal', 'SuccessfulCreate'),
      about('PersistentVolumeClaim', 'Warning', 'ProvisioningFailed'),
      about('PersistentVolumeClaim', 'Warning', 'FailedBinding'),
      about('PersistentVolumeClaim', 'Normal', 'FailedBinding'),
      about('PersistentVolumeClaim', 'Normal', 'ExternalProvisioning'),
      about('Pod', 'Warning', 'FailedScheduling'),
    ];
    expect(
      events.map((e) => `${e.involvedObject?.kind} ${e.type} ${e.reason}: ${eventSelectors.filter((s) => selects(s, e)).length}`),
    ).toEqual(events.map((e) => `${e.involvedObject?.kind} ${e.type} ${e.reason}: ${reads(e) ? 1 : 0}`));
  });

  it('names a missing existing claim', () => {
    expect(missingClaimCauses(['nas'])).toEqual([
      { reason: 'ClaimNotFound', message: 'storage names the existing claim nas, which does not exist in this namespace' },
    ]);
  });

  it('names a Secret spec.auth names that does not exist, with the field that names it', () => {
    expect(missingSecretsCause('media', [{ name: 'edge-stream-keys', field: 'spec.auth.rules[0].keysSecret' }])).toEqual({
      reason: 'SecretNotFound',
      message:
        'Secret "edge-stream-keys" (spec.auth.rules[0].keysSecret) not found in namespace media: the pods cannot start until it exists',
    });
    expect(missingSecretsCause('media', [])).toBeUndefined();
  });

  it('names an expired spec.tls certificate, and one that expires within the warning time, with its notAfter', () => {
    const tls = { name: 'edge-tls', field: 'spec.tls.secretName' };
    const day = 24 * 3600_000;
    expect(certificateCause(tls, new Date(now.getTime() - 1000), now)).toEqual({
      reason: 'CertificateExpired',
      message:
        'Secret "edge-tls" (spec.tls.secretName): the certificate in tls.crt expired at 2026-11-28T11:59:59.000Z: RTMPS and HTTPS clients refuse it',
    });
    expect(certificateCause(tls, new Date(now.getTime() + 3 * day + 5000), now)).toEqual({
      reason: 'CertificateExpiring',
      message: 'Secret "edge-tls" (spec.tls.secretName): the certificate in tls.crt expires at 2026-12-01T12:00:05.000Z, in 3 days',
    });
    expect(certificateCause(tls, new Date(now.getTime() + 3600_000), now)?.message).toMatch(/in less than a day$/);
    expect(certificateCause(tls, new Date(now.getTime() + certificateWarningMs + 1), now)).toBeUndefined();
  });
});
