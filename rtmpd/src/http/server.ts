import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { splitHostPort } from '../config.ts';

export interface HttpServer {
  address(): AddressInfo;
  /**
   * Stops accepting, lets in-flight responses finish for up to `graceMs`,
   * then cuts what is left. Live HTTP-FLV responses end when their streams
   * do, so close the hub first.
   */
  close(graceMs: number): Promise<void>;
}

export async function listenHttp(app: Koa, bind: string): Promise<HttpServer> {
  const server: Server = createServer(app.callback());
  // Long-lived HTTP-FLV responses must not be cut by the default 5-minute request timeout.
  server.requestTimeout = 0;
  const { host, port } = splitHostPort(bind);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: () => server.address() as AddressInfo,
    close: (graceMs) =>
      new Promise((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), graceMs).unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
