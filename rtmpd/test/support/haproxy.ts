// HAProxy as the load balancer in front of rtmpd: each frontend listens on a
// free loopback port and forwards to an rtmpd listener from 127.0.0.2 (the
// balancer's address the tests trust), sending a PROXY v1 or v2 header; or,
// as an HTTP reverse proxy, from 127.0.0.4 adding X-Forwarded-For.
// The caller stops it (by its process id) when its tests end.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitForPort } from './processes.ts';
import { freePort } from '../../../e2e/lib/free-port.ts';

/** The balancer's own address: rtmpd sees HAProxy's TCP connections come from it. */
export const BALANCER_ADDRESS = '127.0.0.2';
/** The reverse proxy's address: rtmpd sees HAProxy's HTTP connections come from it. */
export const FORWARDER_ADDRESS = '127.0.0.4';

export interface Frontend {
  /** The rtmpd port it forwards to. */
  to: number;
  /** send-proxy (v1), send-proxy-v2, or `forwarded-for`: HTTP mode, adding the client to X-Forwarded-For. */
  header: 'v1' | 'v2' | 'forwarded-for';
  /**
   * Health-checks its server: `reset`, every 100 ms, a connection that sends
   * the header (v2 LOCAL) and is reset at once; `banner`, every 500 ms, a
   * tcp-check waiting for the server to speak first, as for a service with a
   * banner: it sends nothing, not even the header, holds the connection
   * 3 s (timeout check) and resets it (HAProxy 2.6, measured).
   */
  check?: 'reset' | 'banner';
}

const checkLines: Record<NonNullable<Frontend['check']>, { backend: string[]; server: string }> = {
  reset: { backend: [], server: ' check inter 100ms' },
  banner: {
    backend: ['  option tcp-check', '  tcp-check connect', '  tcp-check expect string RTMP', '  timeout check 3s'],
    server: ' check inter 500ms',
  },
};

const serverLine: Record<Frontend['header'], string> = {
  v1: `send-proxy source ${BALANCER_ADDRESS}`,
  v2: `send-proxy-v2 source ${BALANCER_ADDRESS}`,
  'forwarded-for': `source ${FORWARDER_ADDRESS}`,
};

/** Starts HAProxy with one frontend per entry; resolves with their ports once they listen. */
export async function startHaproxy(dir: string, frontends: readonly Frontend[]): Promise<{ ports: number[]; stop(): void }> {
  const ports = await Promise.all(frontends.map(() => freePort()));
  const sections = frontends.map(({ to, header, check }, i) =>
    [
      `frontend f${i}`,
      `  bind 127.0.0.1:${ports[i]}`,
      ...(header === 'forwarded-for' ? ['  mode http', '  option forwardfor'] : []),
      `  default_backend b${i}`,
      `backend b${i}`,
      ...(header === 'forwarded-for' ? ['  mode http'] : []),
      ...(check ? checkLines[check].backend : []),
      `  server rtmpd 127.0.0.1:${to} ${serverLine[header]}${check ? checkLines[check].server : ''}`,
    ].join('\n'),
  );
  const config = join(dir, 'haproxy.cfg');
  await writeFile(
    config,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      ...sections,
      '',
    ].join('\n'),
  );
  const child = spawn('haproxy', ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = () => void child.kill('SIGKILL');
  try {
    await Promise.all(ports.map((port) => waitForPort(port)));
  } catch (err) {
    stop();
    throw err;
  }
  return { ports, stop };
}
