// The numbers both ends of an RTMP connection agree on: message type ids and
// the chunk stream ids rtmpd sends on. Readers, writers and the session take
// them from here, so no module imports a parser for a constant.
export const MessageType = {
  setChunkSize: 1,
  abort: 2,
  acknowledgement: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf3: 15,
  sharedObjectAmf3: 16,
  commandAmf3: 17,
  dataAmf0: 18,
  sharedObjectAmf0: 19,
  commandAmf0: 20,
  aggregate: 22,
} as const;

/** Chunk streams as FMS and SRS use them; a peer may use any ids, these are what we send on. */
export const ChunkStreamId = {
  protocol: 2,
  command: 3,
  /** Commands and status sent on a media stream (onStatus, play/publish). */
  streamCommand: 5,
  data: 5,
  video: 6,
  audio: 7,
} as const;

/** The chunk size both directions start with, until a Set Chunk Size changes it. */
export const DEFAULT_CHUNK_SIZE = 128;
