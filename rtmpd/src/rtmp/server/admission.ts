// The admission step every publish and play goes through before the hub is
// asked and before the client hears NetStream.Publish.Start or Play.Start:
// an ordered list of checks the server is given (none by default).
// Authorization and the fleet's stream claims plug in here as checks; the
// session's state machine does not change for them.
//
// The contract, for whoever writes a check:
// - It gets the request and answers allow or refuse, synchronously or not.
//   Checks run in order; the first refusal ends the step, and the client is
//   sent its onStatus code and description (e.g. NetStream.Publish.Unauthorized,
//   NetStream.Publish.BadName). With `close`, the connection is closed after
//   the refusal, so an encoder does not retry on the same connection.
// - `signal` is aborted when the client goes away (or cancels with
//   deleteStream) while checks are pending; the answer of an aborted request
//   is ignored, so a check may stop early but need not.
// - A check that throws or rejects refuses with NetStream.Publish.Failed or
//   NetStream.Play.Failed; the error is logged, never sent to the client.
// - The checks together must not take longer than the idle timeout from
//   `startedAt`: the connection is closed as idle then, as any other that
//   makes no progress. A check that may wait counts from there, not from
//   its own start, so the time an earlier check took (an auth callback)
//   is not given twice.
// - What the hub refuses itself (an invalid name, a key already live) is
//   refused after the checks allowed it, as before there were checks.
// - An allowing check may hand back a lease: the session attaches to it once
//   it is live (so the check can end it later, e.g. when its key is revoked)
//   and releases it when it ends or never began.

import type { RtmpProtocol } from '../../hub/subscriber.ts';

export type AdmissionAction = 'publish' | 'play';

export interface AdmissionRequest {
  action: AdmissionAction;
  app: string;
  /** The stream key, without the query string. */
  key: string;
  /** What followed `?` in the stream name the client sent (`token=...`), or ''. */
  query: string;
  /** The tcUrl of the client's connect, when it sent one. */
  tcUrl: string | undefined;
  /** The client's address, `host:port`. */
  remoteAddress: string;
  /** The listener the connection came in on: `rtmps` is RTMP over TLS. */
  protocol: RtmpProtocol;
  /** Aborted when the answer is no longer wanted. */
  signal: AbortSignal;
  /** performance.now() when the admission step began: the checks together have the idle timeout from then. */
  startedAt: number;
}

/** What an allowing check keeps of the session it admitted. */
export interface AdmissionLease {
  /** The session is live (publishing, playing, or waiting for its publisher); `end` ends it. */
  attach(end: () => void): void;
  /** The session is over, or never began (the hub refused it). Called once. */
  release(): void;
}

export type AdmissionDecision =
  | { allow: true; lease?: AdmissionLease }
  | {
      allow: false;
      /** The onStatus code the client is sent, e.g. NetStream.Publish.Unauthorized. */
      code: string;
      description: string;
      /** Close the connection after the refusal. */
      close?: boolean;
    };

export type AdmissionCheck = (request: AdmissionRequest) => AdmissionDecision | Promise<AdmissionDecision>;

/** Logs a check that failed; pino's `(obj, msg)`. */
export type AdmissionErrorLog = (obj: object, msg: string) => void;

/**
 * Runs the checks in order; the first refusal wins. A failing check refuses,
 * and so does an aborted request. The leases of the checks that allowed are
 * merged into one, or released when a later check refuses.
 */
export async function admit(
  checks: readonly AdmissionCheck[],
  request: AdmissionRequest,
  logError: AdmissionErrorLog,
): Promise<AdmissionDecision> {
  const verb = request.action === 'publish' ? 'Publish' : 'Play';
  const leases: AdmissionLease[] = [];
  const refuse = (decision: AdmissionDecision & { allow: false }) => {
    for (const lease of leases) lease.release();
    return decision;
  };
  for (const check of checks) {
    if (request.signal.aborted) return refuse({ allow: false, code: `NetStream.${verb}.Failed`, description: 'the client went away' });
    let decision: AdmissionDecision;
    try {
      decision = await check(request);
    } catch (err) {
      logError({ err, app: request.app, key: request.key, action: request.action }, 'rtmp admission check failed');
      return refuse({
        allow: false,
        code: `NetStream.${verb}.Failed`,
        description: `${request.action} of ${request.app}/${request.key} could not be checked`,
      });
    }
    if (!decision.allow) return refuse(decision);
    if (decision.lease) leases.push(decision.lease);
  }
  if (leases.length <= 1) return leases[0] ? { allow: true, lease: leases[0] } : { allow: true };
  return {
    allow: true,
    lease: {
      attach: (end) => leases.forEach((lease) => lease.attach(end)),
      release: () => leases.forEach((lease) => lease.release()),
    },
  };
}
