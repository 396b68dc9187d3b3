// The bench's reading of why rtmpd refused or closed a connection, against a
// real rtmpd driven into each kind of refusal the bench counts: a pattern
// that no longer matches what rtmpd says (a renamed series, a new label)
// would otherwise read as "none refused" and pass every smoke run.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageType } from '../../rtmpd/src/rtmp/wire/message-types.ts';
import { serverCloses } from './server-closes.ts';
import { OBS_STYLE, PeerFailure, RtmpPeer } from './rtmp-peer.ts';
import { removeServerDir, startServer, type RunningServer } from './servers.ts';

let server: RunningServer;
const peers: RtmpPeer[] = [];
beforeAll(async () => {
  server = await startServer('rtmpd', {
    rtmpdFlags: ['--max-connections', '2', '--start-timeout-seconds', '1', '--player-stall-timeout-seconds', '1'],
  });
});
afterAll(async () => {
  for (const p of peers) p.close();
  await server.stop();
  removeServerDir(server);
});

/** A connection to stream `key` that has sent connect: a publisher by default, a player without a style. */
async function peer(key: string, style: typeof OBS_STYLE | undefined = OBS_STYLE): Promise<RtmpPeer> {
  const p = await RtmpPeer.connect(`${server.rtmpBase}/${key}`, style);
  peers.push(p);
  return p;
}

/** Why `attempt` failed, as the bench counts it. */
async function failure(attempt: Promise<unknown>): Promise<string> {
  const err = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeerFailure);
  return (err as PeerFailure).reason;
}

/** A handshake that opens with RTMP version 9: rtmpd closes it at once. */
function badVersionHandshake(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.alloc(1 + 1536, 9)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

describe('bench: what rtmpd refused or closed', () => {
  it('counts each refusal and close rtmpd reports, under the reason rtmpd gives', { timeout: 30_000 }, async () => {
    const metrics = new URL('/metrics', server.httpBase);
    await badVersionHandshake(Number(new URL(server.rtmpBase).port));

    const publisher = await peer('a');
    await publisher.publish();
    const player = await peer('a', undefined);
    await player.play(() => {});
    // Two connections are open: a third is refused.
    expect(await failure(peer('c'))).toMatch(/^handshake: (closed|reset) by the server$/);

    // The player stops reading: once the socket buffers are full, its queue does not drain.
    player.socket.pause();
    const keyframe = Buffer.alloc(256 * 1024, 0x11);
    keyframe.set([0x17, 1, 0, 0, 0]);
    for (let i = 0; i < 120; i++) publisher.sendMedia(MessageType.video, i * 40, keyframe);
    await expect
      .poll(() => serverCloses(metrics), { timeout: 10_000 })
      .toEqual({ handshake_bad_version: 1, player_stalled: 1, max_connections: 1 });

    // The stalled player's place is free: a second publisher of the stream is refused, then left to time out.
    const second = await peer('a');
    expect(await failure(second.publish())).toBe('publish: NetStream.Publish.BadName');
    await expect
      .poll(() => serverCloses(metrics), { timeout: 10_000 })
      .toEqual({ handshake_bad_version: 1, player_stalled: 1, max_connections: 1, start_timeout: 1 });
  });
});
