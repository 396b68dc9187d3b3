import { describe, expect, it } from 'vitest';
import { decodeAmf0, encodeAmf0 } from '../wire/amf0.ts';
import { command, errorResult, onStatus, result } from '../wire/commands.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';
import { parseDestination } from './destination.ts';
import { CLIENT_CHUNK_SIZE, PublishRefused, RtmpPublishClient, type PublishStep } from './publish-client.ts';

interface Sent {
  csid: number;
  typeId: number;
  streamId: number;
  timestamp: number;
  values: unknown[];
}

/** The client with its output captured, as a destination sees it, decoded. */
function client(url = 'rtmp://ingest.example:1935/live2/s3cret-key') {
  const sent: Sent[] = [];
  const steps: PublishStep[] = [];
  let chunkSize = 0;
  const out = {
    sendMessage: (csid: number, typeId: number, streamId: number, timestamp: number, body: Buffer) => {
      const media = typeId === MessageType.audio || typeId === MessageType.video;
      sent.push({ csid, typeId, streamId, timestamp, values: media ? [body] : decodeAmf0(body) });
    },
    setChunkSize: (size: number) => (chunkSize = size),
  };
  const c = new RtmpPublishClient(parseDestination(url), out, (step) => steps.push(step));
  const names = () => sent.map((m) => m.values[0]);
  const answer = (body: Buffer) => c.message(MessageType.commandAmf0, body);
  return { c, sent, steps, names, answer, chunkSize: () => chunkSize };
}

/** Drives a client to `sending` with the replies rtmpd and FFmpeg give. */
function publishing() {
  const t = client();
  t.c.handshakeDone();
  t.answer(result(1, { code: 'NetConnection.Connect.Success' }));
  t.answer(result(4, 7));
  t.answer(onStatus({ level: 'status', code: 'NetStream.Publish.Start', description: 'ok' }));
  return t;
}

describe('RtmpPublishClient', () => {
  it('sends connect, then releaseStream, FCPublish and createStream, then publish on the stream it was given', () => {
    const t = client();
    t.c.handshakeDone();
    expect(t.chunkSize()).toBe(CLIENT_CHUNK_SIZE);
    expect(t.sent[0]!.values).toEqual([
      'connect',
      1,
      { app: 'live2', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; flux-rtmpd)', tcUrl: 'rtmp://ingest.example:1935/live2' },
    ]);
    expect(t.c.step).toBe('connect');
    t.answer(command('onBWDone', 0, null)); // needs no answer
    t.answer(result(1, { code: 'NetConnection.Connect.Success' }));
    expect(t.names()).toEqual(['connect', 'releaseStream', 'FCPublish', 'createStream']);
    expect(t.sent[1]!.values).toEqual(['releaseStream', 2, null, 's3cret-key']);
    expect(t.c.step).toBe('createStream');
    t.answer(errorResult(2, 'NetConnection.Call.Failed', 'unknown command')); // a server without releaseStream
    t.answer(result(4, 7));
    expect(t.sent[4]).toEqual({
      csid: ChunkStreamId.streamCommand,
      typeId: MessageType.commandAmf0,
      streamId: 7,
      timestamp: 0,
      values: ['publish', 5, null, 's3cret-key', 'live'],
    });
    expect(t.c.step).toBe('publish');
    t.answer(onStatus({ level: 'status', code: 'NetStream.Publish.Start', description: 'ok' }));
    expect(t.steps).toEqual(['connect', 'createStream', 'publish', 'sending']);
  });

  it('sends no media before the publish started, then media on its stream and metadata as @setDataFrame', () => {
    const early = client();
    early.c.handshakeDone();
    early.c.sendMedia('video', 40, Buffer.from([0x17, 1]));
    expect(early.names()).toEqual(['connect']);

    const t = publishing();
    const frame = Buffer.from([0x17, 1, 0, 0, 0]);
    t.c.sendMedia('video', 40, frame);
    t.c.sendMedia('data', 0, encodeAmf0('onMetaData', { width: 640 }));
    const [video, data] = t.sent.slice(-2);
    expect(video).toEqual({ csid: ChunkStreamId.video, typeId: MessageType.video, streamId: 7, timestamp: 40, values: [frame] });
    expect(data!.values).toEqual(['@setDataFrame', 'onMetaData', { width: 640 }]);
    expect(data!.streamId).toBe(7);
  });

  it('ends a publish with FCUnpublish and deleteStream', () => {
    const t = publishing();
    t.c.unpublish();
    expect(t.sent.slice(-2).map((m) => m.values)).toEqual([
      ['FCUnpublish', 6, null, 's3cret-key'],
      ['deleteStream', 7, null, 7],
    ]);
    expect(t.c.step).toBe('unpublished');
    t.c.sendMedia('audio', 60, Buffer.from([0xaf, 1]));
    expect(t.sent).toHaveLength(7);
  });

  it('throws the refusal of a publish with its code, the stream key replaced', () => {
    const t = client();
    t.c.handshakeDone();
    t.answer(result(1, {}));
    t.answer(result(4, 1));
    const refusal = onStatus({ level: 'error', code: 'NetStream.Publish.BadName', description: 'stream live2/s3cret-key is taken' });
    let thrown: unknown;
    try {
      t.answer(refusal);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PublishRefused);
    expect((thrown as PublishRefused).code).toBe('NetStream.Publish.BadName');
    expect((thrown as Error).message).toBe('NetStream.Publish.BadName: stream live2/*** is taken');
  });

  it('throws on a refused connect or createStream', () => {
    const t = client();
    t.c.handshakeDone();
    expect(() => t.answer(errorResult(1, 'NetConnection.Connect.Rejected', 'bad app'))).toThrow('NetConnection.Connect.Rejected: bad app');
    const u = client();
    u.c.handshakeDone();
    u.answer(result(1, {}));
    expect(() => u.answer(result(4, 'not a number'))).toThrow(PublishRefused);
  });
});
