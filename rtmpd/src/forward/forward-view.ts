// A forward's state and its view in the stream API (GET /api/v1/rtmp/streams):
// the destination without its stream key, where the forward is, what it sent.
import { z } from 'zod';

/** Where a forward is: a step of its client's publish, or between connections (backoff), or done. */
export const FORWARD_STATES = ['connecting', 'handshaking', 'connect', 'createStream', 'publish', 'sending', 'backoff', 'stopped'] as const;
export type ForwardState = (typeof FORWARD_STATES)[number];

export const forwardViewSchema = z.object({
  /** The destination URL with its stream key replaced by ***. */
  destination: z.string().max(2048),
  state: z.enum(FORWARD_STATES),
  /** Connections opened to the destination. */
  attempts: z.number().int().nonnegative(),
  /** Bytes written to the destination over all its connections. */
  bytes: z.number().int().nonnegative(),
  /** Why the last connection failed (a refusal's status code and description, a timeout, ...); null when none did. */
  last_error: z.string().max(1024).nullable(),
});
export type ForwardView = z.infer<typeof forwardViewSchema>;
