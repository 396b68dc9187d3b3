// Where pods of a fleet reach each other (under /fleet/v1 on the HTTP port)
// and what one pod answers another for its streams: routes.ts serves them,
// catalog.ts, relays.ts and recordings.ts ask (through peer-http.ts but for
// relays). A module of its own, so that those modules and routes.ts (which
// imports recordings.ts) form no cycle.
import { z } from 'zod';
import { streamViewSchema } from '../http/stream-view.ts';

export const FLEET_PREFIX = '/fleet/v1';
export const RELAY_PATH = `${FLEET_PREFIX}/relay`;

/** One pod's answer to GET /fleet/v1/streams. */
export const podStreamsSchema = z.object({
  pod: z.string().max(253),
  streams: z.array(z.object({ view: streamViewSchema, relayed: z.boolean() })).max(100_000),
});
export type PodStreams = z.infer<typeof podStreamsSchema>;
