// Regenerates the captured sessions in this folder: a TCP proxy between a
// real client and a running rtmpd records what the client sends after the
// handshake (C0+C1+C2 = 3073 bytes are dropped). Usage:
//   npx node rtmpd/src/rtmp/wire/testdata/capture.ts <upstream-port> <out-file> -- <client command with PORT>
// e.g. ... 1935 ffmpeg-publish.bin -- ffmpeg -re -f lavfi -i testsrc2=size=160x120:rate=25 ... rtmp://127.0.0.1:PORT/live/test
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';

const [upstreamPort, outFile, sep, ...command] = process.argv.slice(2);
if (!upstreamPort || !outFile || sep !== '--' || command.length === 0) throw new Error('usage: capture.ts <upstream-port> <out-file> -- <command>');
const HANDSHAKE_BYTES = 1 + 1536 + 1536;
const received: Buffer[] = [];
const proxy = createServer((client) => {
  const upstream = connect(Number(upstreamPort), '127.0.0.1');
  client.on('data', (d: Buffer) => received.push(d));
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
proxy.listen(0, '127.0.0.1', () => {
  const port = (proxy.address() as AddressInfo).port;
  const child = spawn(command[0]!, command.slice(1).map((a) => a.replace('PORT', String(port))), { stdio: 'inherit' });
  child.on('exit', () => {
    setTimeout(() => {
      writeFileSync(outFile, Buffer.concat(received).subarray(HANDSHAKE_BYTES));
      proxy.close();
      process.exit(0);
    }, 300);
  });
});
