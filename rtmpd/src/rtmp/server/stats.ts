// Plain-number counters, bumped on the hot path without allocation; the
// telemetry module reads them when /metrics is scraped.
import { CONNECTION_STATES, zeroConnectionRefusals, type ConnectionState, type RtmpConnectionRefusal } from '../../telemetry/metrics.ts';
import type { TrafficCounters } from '../io/connection.ts';

/** What the connections of one listener count: plain RTMP's, or RTMPS's. */
export interface RtmpListenerStats extends TrafficCounters {
  /** Connections open now, by the state of their session. */
  connections: Record<ConnectionState, number>;
  connectionsAccepted: number;
  /**
   * Refused because --max-connections were open, or --max-connections-per-address from the client's address;
   * or closed at a publish over --max-publishes-per-address-per-minute from that address.
   */
  connectionsRefused: Record<RtmpConnectionRefusal, number>;
  /** By reason: handshake_bad_version, handshake_rtmpe, handshake_timeout, ... */
  handshakeFailures: Record<string, number>;
  /** By RtmpProtocolError reason: message_too_large, amf_truncated, ... */
  protocolErrors: Record<string, number>;
  /** By command name: commands answered with _error or an error onStatus. */
  commandErrors: Record<string, number>;
}

export interface RtmpStats {
  /** By the listener a connection came in on: rtmp always, rtmps once --rtmps-bind listens. */
  protocols: { rtmp: RtmpListenerStats; rtmps?: RtmpListenerStats };
  /** Bytes held for messages still arriving, over all connections of both listeners (both halves of the server's budget once it runs). */
  inbound: { readonly held: number };
}

export function createRtmpStats(): RtmpStats {
  return { protocols: { rtmp: createListenerStats() }, inbound: { held: 0 } };
}

export function createListenerStats(): RtmpListenerStats {
  return {
    connections: Object.fromEntries(CONNECTION_STATES.map((state) => [state, 0])) as Record<ConnectionState, number>,
    connectionsAccepted: 0,
    connectionsRefused: { ...zeroConnectionRefusals(), publish_rate: 0 },
    handshakeFailures: Object.create(null) as Record<string, number>,
    protocolErrors: Object.create(null) as Record<string, number>,
    commandErrors: Object.create(null) as Record<string, number>,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
  };
}

/** Counts one event under a label; labels are fixed tokens, never peer data. */
export function countBy(counters: Record<string, number>, label: string): void {
  counters[label] = (counters[label] ?? 0) + 1;
}
