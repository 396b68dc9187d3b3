// A forward's state and its view in the stream API (GET /api/v1/rtmp/streams):
// the destination without its stream key, where the forward is, what it sent.
import { z } from 'zod';

/** Where a forward is: a step of its client's publish, or between connections (backoff), or done. */
export const FORWARD_STATES = ['connecting', 'handshaking', 'connect', 'createStream', 'publish', 'sending', 'backoff', 'stopped'] as const;
export type ForwardState = (typeof FORWARD_STATES)[number];

/**
 * Why a forward's connection failed: the `reason` label of
 * rtmpd_forward_failures_total. `refused`: the destination answered the
 * publish with an error; `timeout`: a step had no answer in time; `closed`:
 * the destination closed the connection; `stalled`: it read too slowly (as a
 * stalled player); `certificate`: an rtmps:// destination's certificate did
 * not verify; `connection`: connecting or the connection failed (refused,
 * reset, no route, no such host); `protocol`: it sent what rtmpd cannot parse.
 */
export const FORWARD_FAILURES = ['refused', 'timeout', 'closed', 'stalled', 'certificate', 'connection', 'protocol'] as const;
export type ForwardFailure = (typeof FORWARD_FAILURES)[number];

export const forwardViewSchema = z.object({
  destination: z.string().max(2048).describe('The destination URL with its stream key replaced by ***.'),
  state: z
    .enum(FORWARD_STATES)
    .describe('A step of the publish to the destination, sending once it is published, backoff between attempts, stopped at the end.'),
  attempts: z.number().int().nonnegative().describe('Connections opened to the destination.'),
  bytes: z.number().int().nonnegative().describe('Bytes written to the destination over all its connections.'),
  last_error: z
    .string()
    .max(1024)
    .nullable()
    .describe(
      "Why the last connection failed (a refusal's status code and description, a timeout, ...); a certificate problem says what fixes it (an untrusted CA: --forward-tls-ca-file, spec.forwards.caSecret on Kubernetes). Null when none did.",
    ),
});
export type ForwardView = z.infer<typeof forwardViewSchema>;
