// The session's state machine, command by command, with the project client:
// what a connection may ask in each state, and each state's own deadline.
import { describe, expect, it } from 'vitest';
import type { RtmpClient } from '../../../test/support/rtmp-client.ts';
import { startTestRtmpServer, testClient } from '../../../test/support/rtmp-server.ts';
import { sleep, until } from '../../../test/support/wait.ts';
import { streamId } from '../../hub/names.ts';
import { encodeAmf0 } from '../wire/amf0.ts';
import { ChunkStreamId, MessageType } from '../wire/message-types.ts';
import type { AdmissionCheck } from './admission.ts';

/** Sends a command on the client's stream without waiting for an answer (publish, play and pause get onStatus, not _result). */
const sendStreamCommand = (client: RtmpClient, name: string, ...args: Parameters<typeof encodeAmf0>) =>
  client.sendMessage(ChunkStreamId.streamCommand, MessageType.commandAmf0, 0, encodeAmf0(name, 0, null, ...args));

const closedBy = (client: RtmpClient) =>
  new Promise<void>((resolve) => (client.socket.destroyed ? resolve() : client.socket.once('close', () => resolve())));

describe('rtmp session states', () => {
  it('closes a connection that sends connect a second time', async () => {
    const { url, stats } = await startTestRtmpServer();
    const client = await testClient(url('twice'));
    void client.call('connect', { app: 'live' }).catch(() => undefined);
    await closedBy(client);
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject({ duplicate_connect: 1 });
  });

  it('creates eight message streams on a connection and refuses the ninth', async () => {
    const { url, stats } = await startTestRtmpServer();
    const client = await testClient(url('streams'));
    const ids: unknown[] = [];
    for (let i = 0; i < 8; i++) ids.push((await client.call('createStream', null)).args[0]);
    expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const ninth = await client.call('createStream', null).catch((e: unknown) => e);
    expect((ninth as { code?: string }).code).toBe('NetConnection.Call.Failed');
    expect(stats.protocols.rtmp.commandErrors).toMatchObject({ createStream: 1 });
  });

  it('refuses a play or a second publish on a connection that publishes, and its stream goes on', async () => {
    const { url, hub } = await startTestRtmpServer();
    const other = await testClient(url('other'));
    await other.publish();
    const publisher = await testClient(url('mine'));
    await publisher.publish();
    const codes: string[] = [];
    publisher.on('status', (info) => codes.push(String(info.code)));
    sendStreamCommand(publisher, 'play', 'other', -2);
    sendStreamCommand(publisher, 'publish', 'third', 'live');
    await until(() => codes.length === 2);
    expect(codes).toEqual(['NetStream.Play.Failed', 'NetStream.Publish.BadConnection']);
    expect(hub.byId('rtmp/live/third')).toBeUndefined();
    expect(hub.byId('rtmp/live/mine')?.isEnded).toBe(false);
    expect(publisher.socket.destroyed).toBe(false);
  });

  it('times the start and a pause by their own options, not by the connect or idle timeouts', async () => {
    // Connect and idle deadlines far away: only --start-timeout-seconds and --max-pause-seconds can close these two.
    const { url, stats } = await startTestRtmpServer({
      connectTimeoutSeconds: 60,
      idleTimeoutSeconds: 60,
      startTimeoutSeconds: 2,
      maxPauseSeconds: 2,
    });
    const idler = await testClient(url('never'));
    const publisher = await testClient(url('paused'));
    await publisher.publish();
    const player = await testClient(url('paused'));
    await player.play();
    sendStreamCommand(player, 'pause', true, 0);
    await Promise.all([closedBy(idler), closedBy(player)]);
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject({ start_timeout: 1, pause_timeout: 1 });
    expect(publisher.socket.destroyed).toBe(false);
  });

  it('stops waiting for a publisher when the waiting player sends deleteStream', async () => {
    const { url, hub } = await startTestRtmpServer({ playWaitSeconds: 30 });
    const player = await testClient(url('later'));
    void player.play().catch(() => undefined);
    await until(() => hub.awaited(streamId('live', 'later')));
    sendStreamCommand(player, 'deleteStream', player.streamId);
    await until(() => !hub.awaited(streamId('live', 'later')), 5000);
    expect(player.socket.destroyed).toBe(false);
  });

  it('tells a publisher the server ends why, and closes its connection', async () => {
    const { url, hub } = await startTestRtmpServer();
    const publisher = await testClient(url('kicked'));
    await publisher.publish();
    const codes: string[] = [];
    publisher.on('status', (info) => codes.push(String(info.code)));
    hub.get('live', 'kicked')!.publisher.close('kicked');
    await until(() => publisher.socket.destroyed, 5000);
    expect(codes).toEqual(['NetStream.Publish.Rejected']);
    expect(hub.size).toBe(0);
  });

  it('keeps the start deadline running across refused publishes: a client retrying one every half second is closed in time', async () => {
    const refuse: AdmissionCheck = () => ({ allow: false, code: 'NetStream.Publish.Unauthorized', description: 'no token' });
    const { url, stats } = await startTestRtmpServer({ startTimeoutSeconds: 2 }, { admission: [refuse] });
    const publisher = await testClient(url('cam'));
    const giveUpAt = performance.now() + 10_000;
    while (!publisher.socket.destroyed && performance.now() < giveUpAt) {
      sendStreamCommand(publisher, 'publish', 'cam', 'live');
      await sleep(500);
    }
    expect(stats.protocols.rtmp.protocolErrors).toMatchObject({ start_timeout: 1 });
  });
});
