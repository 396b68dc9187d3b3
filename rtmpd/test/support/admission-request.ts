import type { AdmissionRequest } from '../../src/rtmp/server/admission.ts';

/** A plain-RTMP publish of live/cam as admission checks see it; `overrides` set what a test varies. */
export const publishRequest = (overrides: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  action: 'publish',
  app: 'live',
  key: 'cam',
  query: '',
  tcUrl: undefined,
  remoteAddress: '127.0.0.1:1',
  protocol: 'rtmp',
  signal: new AbortController().signal,
  startedAt: performance.now(),
  ...overrides,
});
